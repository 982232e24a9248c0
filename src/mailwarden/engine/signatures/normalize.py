"""Text and HTML normalisers for ClamAV target types 7 (ASCII) and 3 (HTML).

ClamAV does not match target-7 and target-3 body signatures against the raw
bytes of a text or HTML file but against normalised copies of it, and it
matches target-0 signatures against both.  :func:`views` returns the buffers
to scan for one payload kind, in the order ClamAV scans them.

Text (ClamAV's ``textnorm``, documented in its source): ASCII letters are
lower-cased; every run of whitespace (tab, LF, VT, FF, CR, space) becomes one
space; other control bytes and every byte above 0x7f are dropped.  This
normaliser reproduces that exactly.

HTML (ClamAV's ``htmlnorm`` is a large state machine; this is an
approximation that reproduces what ClamAV 1.4 writes for ordinary markup):

* ``nocomment`` view: comments ``<!-- -->`` and declarations ``<! >`` are
  removed, character references (``&amp;``, ``&#65;``, ``&#x41;``...) are
  decoded, everything is lower-cased, whitespace inside a tag is folded to
  one space with none around ``=`` or before ``>``, whitespace in text folds
  to one space and is dropped right after a tag, and inside ``<script>``
  all whitespace is dropped;
* ``notags`` view: the text content only (no tags, scripts or styles),
  lower-cased, with each tag acting as one space.

Known differences: ClamAV keeps some attribute values in the ``notags``
view, splits decoded entities there, and writes a separate JavaScript view
with renamed identifiers; none of that is reproduced.

Speed: whitespace runs are squeezed with ``bytes.translate`` and repeated
``bytes.replace`` (C loops) rather than a regular expression, which costs a
Python-level match attempt per space; tags with nothing to fold (most) are
only lower-cased.

SECURITY: works on hostile data in linear time with regular expressions that
cannot backtrack catastrophically; output is never larger than the input
(plus one space per tag in ``notags``), and only :data:`MAX_NORMALISE`
bytes of a payload are normalised.
"""

from __future__ import annotations

import html
import re
from collections.abc import Collection

from mailwarden.engine.filetype import FileKind
from mailwarden.engine.objects import Buffer
from mailwarden.engine.signatures.targets import ANY_TARGET, HTML_TARGET, TEXT_TARGET

#: ClamAV also bounds how much of a file it normalises.
MAX_NORMALISE = 64 * 1024 * 1024

_WS = b"\t\n\x0b\x0c\r "
_DROP = bytes(b for b in range(256) if (b < 0x20 and b not in _WS) or b > 0x7F)
_TEXT_TABLE = bytes.maketrans(
    bytes(range(0x41, 0x5B)) + _WS, bytes(range(0x61, 0x7B)) + b" " * len(_WS)
)
_WS_TO_SPACE = bytes.maketrans(_WS, b" " * len(_WS))
_WS_RUN = re.compile(rb"[\t\n\x0b\x0c\r ]+")
_CHUNK = 1 << 20


def _squeeze(data: bytes) -> bytes:
    """Runs of spaces to one space.

    ``replace`` halves every run per pass at C speed, where a regular
    expression costs a Python-level match attempt per space; the total work
    is at most twice the length of the data.
    """
    while b"  " in data:
        data = data.replace(b"  ", b" ")
    return data


def _fold(data: bytes) -> bytes:
    """Runs of whitespace to one space."""
    return _squeeze(data.translate(_WS_TO_SPACE))


def normalise_text(data: Buffer) -> bytes:
    """ClamAV's text normalisation of ``data`` (see the module docstring)."""
    out: list[bytes] = []
    last_space = False
    end = min(len(data), MAX_NORMALISE)
    for start in range(0, end, _CHUNK):
        chunk = _squeeze(
            bytes(data[start : min(start + _CHUNK, end)]).translate(_TEXT_TABLE, _DROP)
        )
        if last_space and chunk.startswith(b" "):
            chunk = chunk[1:]
        if chunk:
            out.append(chunk)
            last_space = chunk.endswith(b" ")
    return b"".join(out)


_TOKEN = re.compile(
    rb"(<!--.*?(?:-->|\Z)"  # 1: comment (an unterminated one runs to the end)
    rb"|<![^>]*>?)"  # 1: declaration
    rb"|(</?[A-Za-z][^>]*>?)"  # 2: tag
    rb"|([^<]+|<)",  # 3: text; a lone '<' is text
    re.DOTALL,
)
_COMMENT, _TAG, _TEXT = 1, 2, 3
#: a tag without quotes needs folding only when it has one of these
_TAG_WORK = re.compile(rb"[\t\n\x0b\x0c\r]| [ =>]|= ")
_TAG_PART = re.compile(rb"\"[^\"]*\"?|'[^']*'?|[^\"']+")
_AROUND_EQ = re.compile(rb" ?= ?")
_TAG_NAME = re.compile(rb"</?([a-z0-9]+)")
_ENTITY = re.compile(rb"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});?")
_LOWER = bytes.maketrans(bytes(range(0x41, 0x5B)), bytes(range(0x61, 0x7B)))


def _one_entity(m: re.Match[bytes]) -> bytes:
    decoded = html.unescape(m.group(0).decode("ascii"))
    if len(decoded) == 1 and ord(decoded) < 0x80:
        return decoded.encode("ascii")
    return m.group(0)


def _norm_tag(tag: bytes) -> bytes:
    low = tag.translate(_LOWER)
    if _TAG_WORK.search(low) is None:
        # nothing to fold, inside quotes or out: the common case
        return low
    if b'"' not in low and b"'" not in low:
        out = _AROUND_EQ.sub(b"=", _fold(low))
        if out.endswith(b">"):
            out = out[:-1].rstrip(b" ") + b">"
        return out
    parts: list[bytes] = []
    for m in _TAG_PART.finditer(low):
        piece = m.group(0)
        if piece[:1] in (b'"', b"'"):
            parts.append(piece)
        else:
            parts.append(_AROUND_EQ.sub(b"=", _WS_RUN.sub(b" ", piece)))
    out = b"".join(parts)
    if out.endswith(b">"):
        out = out[:-1].rstrip(b" ") + b">"
    return out


def normalise_html(data: Buffer) -> tuple[bytes, bytes]:
    """Return ClamAV-like (``nocomment``, ``notags``) views of an HTML payload."""
    src = bytes(data[:MAX_NORMALISE])
    keep: list[bytes] = []
    text: list[bytes] = []
    after_tag = True
    hidden: bytes | None = None  # inside <script> or <style>: the closing tag name
    for m in _TOKEN.finditer(src):
        which = m.lastindex or _TEXT
        if which == _COMMENT:
            continue
        tok = m.group(which)
        if which == _TAG:
            tag = _norm_tag(tok)
            keep.append(tag)
            text.append(b" ")
            # only <script>, <style> and their end tags change what is hidden
            if tag.startswith((b"<s", b"</s")):
                name_m = _TAG_NAME.match(tag)
                name = name_m.group(1) if name_m else b""
                if hidden is None and tag[1] != 0x2F and name in (b"script", b"style"):
                    hidden = name
                elif hidden is not None and tag[1] == 0x2F and name == hidden:
                    hidden = None
            after_tag = True
            continue
        body = _ENTITY.sub(_one_entity, tok) if b"&" in tok else tok
        if hidden == b"script":
            keep.append(body.translate(_LOWER, _WS))
            continue
        # lower-case and whitespace to spaces in one pass, then squeeze the runs
        folded = body.translate(_TEXT_TABLE)
        if b"  " in folded:
            folded = _squeeze(folded)
        if hidden is None:
            text.append(folded)
        if after_tag:
            folded = folded.lstrip(b" ")
        if folded:
            keep.append(folded)
            after_tag = False
    notags = _fold(b"".join(text))
    return b"".join(keep), notags


def views(
    data: Buffer, kind: FileKind, targets: Collection[int] | None = None
) -> list[tuple[str, Buffer]]:
    """The buffers ClamAV scans for a payload of this kind, raw first.

    ``targets`` are the target types of the loaded signatures: a normalised
    view no signature could match (none of target 0 nor of the view's own
    type) is not computed.  None means every target.
    """
    if kind == FileKind.TEXT and _wanted(targets, TEXT_TARGET):
        return [("raw", data), ("text", normalise_text(data))]
    if kind == FileKind.HTML and _wanted(targets, HTML_TARGET):
        nocomment, notags = normalise_html(data)
        return [("raw", data), ("html", nocomment), ("html", notags)]
    return [("raw", data)]


def _wanted(targets: Collection[int] | None, own: int) -> bool:
    return targets is None or ANY_TARGET in targets or own in targets
