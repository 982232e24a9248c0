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
_SPACES = re.compile(rb" {2,}")
_WS_RUN = re.compile(rb"[\t\n\x0b\x0c\r ]+")
_CHUNK = 1 << 20


def normalise_text(data: Buffer) -> bytes:
    """ClamAV's text normalisation of ``data`` (see the module docstring)."""
    out: list[bytes] = []
    last_space = False
    end = min(len(data), MAX_NORMALISE)
    for start in range(0, end, _CHUNK):
        chunk = bytes(data[start : min(start + _CHUNK, end)]).translate(_TEXT_TABLE, _DROP)
        chunk = _SPACES.sub(b" ", chunk)
        if last_space and chunk.startswith(b" "):
            chunk = chunk[1:]
        if chunk:
            out.append(chunk)
            last_space = chunk.endswith(b" ")
    return b"".join(out)


_TOKEN = re.compile(
    rb"<!--.*?(?:-->|\Z)"  # comment (an unterminated one runs to the end)
    rb"|<![^>]*>?"  # declaration
    rb"|</?[A-Za-z][^>]*>?"  # tag
    rb"|[^<]+"  # text
    rb"|<",  # a lone '<' is text
    re.DOTALL,
)
_TAG_PART = re.compile(rb"\"[^\"]*\"?|'[^']*'?|[^\"']+")
_AROUND_EQ = re.compile(rb" ?= ?")
_TAG_NAME = re.compile(rb"</?([a-z0-9]+)")
_ENTITY = re.compile(rb"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});?")
_LOWER = bytes.maketrans(bytes(range(0x41, 0x5B)), bytes(range(0x61, 0x7B)))


def _entities(text: bytes) -> bytes:
    if b"&" not in text:
        return text
    return _ENTITY.sub(_one_entity, text)


def _one_entity(m: re.Match[bytes]) -> bytes:
    decoded = html.unescape(m.group(0).decode("ascii"))
    if len(decoded) == 1 and ord(decoded) < 0x80:
        return decoded.encode("ascii")
    return m.group(0)


def _norm_tag(tag: bytes) -> bytes:
    parts: list[bytes] = []
    for m in _TAG_PART.finditer(tag.translate(_LOWER)):
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
        tok = m.group(0)
        if tok.startswith(b"<!"):
            continue
        if tok.startswith(b"<") and len(tok) > 1:
            tag = _norm_tag(tok)
            keep.append(tag)
            text.append(b" ")
            name_m = _TAG_NAME.match(tag)
            name = name_m.group(1) if name_m else b""
            if hidden is None and not tag.startswith(b"</") and name in (b"script", b"style"):
                hidden = name
            elif hidden is not None and tag.startswith(b"</") and name == hidden:
                hidden = None
            after_tag = True
            continue
        body = _entities(tok).translate(_LOWER)
        if hidden == b"script":
            keep.append(_WS_RUN.sub(b"", body))
            continue
        folded = _WS_RUN.sub(b" ", body)
        if hidden is None:
            text.append(folded)
        if after_tag:
            folded = folded.lstrip(b" ")
        if folded:
            keep.append(folded)
            after_tag = False
    notags = _WS_RUN.sub(b" ", b"".join(text))
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
