"""The MIME splitter: the extractor for FileKind.MAIL.

The walker calls :func:`extract_mail` on every message (the root and each
``message/rfc822`` part); it yields one :class:`Child` per leaf part, decoded,
and one per embedded message (whose content the walker sniffs as mail and
walks again)::

    for child in extract_mail(obj, ctx):   # child.label == "2/invoice.zip"
        ...

Labels are IMAP section numbers ("1", "2", "2.1"; the body of a message that
is not multipart is "1"), with "/<file name>" appended when the part has one.

It is our own splitter on bytes rather than the stdlib ``email`` parser, for
speed (boundaries are found with ``bytes.find``; only Content-Type,
Content-Disposition and Content-Transfer-Encoding are parsed) and for
leniency: bare LF or CRLF, a missing blank line after the headers, a missing
final boundary, preamble and epilogue, parts after a close delimiter (nested
multiparts reusing their parent's boundary end up there), a multipart with no
usable boundary (the first ``--`` line is tried).  Whatever is read leniently
is noted with ``ctx.warn``.

SECURITY: input is hostile.  Work is linear in the message size per nesting
level; header parsing stops at ``Limits.max_header_bytes`` per entity; parts
beyond ``Limits.max_mime_parts`` and multipart nesting deeper than
``Limits.max_depth`` are reported unscanned, never silently dropped; large
decoded parts go through ``ctx.spool()``.  File names are labels only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from mailwarden.engine.mime.codec import decode_body, transfer_encoding
from mailwarden.engine.mime.headers import decode_rfc2047, header_params, scan_header_lines
from mailwarden.engine.objects import Buffer, Child, ScanObject, WalkContext

_WANTED = ("content-type", "content-disposition", "content-transfer-encoding")
#: how far into a body a boundary is guessed when the declared one is absent
_GUESS_WINDOW = 64 * 1024
_GUESS_LINE = re.compile(rb"^--([\x21-\x7e][\x20-\x7e]{0,199}?)[ \t]*\r?$", re.MULTILINE)
_LABEL_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")
_MAX_LABEL_NAME = 255


def extract_mail(obj: ScanObject, ctx: WalkContext) -> Iterator[Child]:
    """Yield every leaf part of the message in ``obj``, decoded, in document order."""
    splitter = _Splitter(obj.data, obj.part, ctx)
    yield from splitter.entity(0, len(obj.data), _Place("", 0, "text/plain"))


def safe_label(name: str) -> str:
    """A file name made fit for a path label: no separators or control characters."""
    return _LABEL_UNSAFE.sub("_", name)[:_MAX_LABEL_NAME]


class _Place(NamedTuple):
    """Where an entity sits: its section number, multipart depth, and implied type."""

    section: str
    depth: int
    default_type: str


class _Splitter:
    def __init__(self, buf: Buffer, part: str, ctx: WalkContext) -> None:
        self.buf = buf
        self.part = part
        self.ctx = ctx
        self.parts = 0
        self.stopped = False

    def _where(self, section: str) -> str:
        return f"{self.part}/{section}" if self.part else section

    def _count(self, section: str) -> bool:
        """Count one more part; False (and noted once) past the limit."""
        self.parts += 1
        if self.parts > self.ctx.limits.max_mime_parts:
            if not self.stopped:
                self.ctx.unscanned(
                    self._where(section), f"more than {self.ctx.limits.max_mime_parts} MIME parts"
                )
            self.stopped = True
        return not self.stopped

    def headers(self, start: int, end: int, section: str) -> tuple[dict[str, str], int]:
        """Return the wanted headers (first occurrence wins) and where the body starts."""
        buf = self.buf
        first = buf[start : start + 2]
        if first[:1] == b"\n":
            return {}, start + 1
        if first == b"\r\n":
            return {}, start + 2
        crlf = buf.find(b"\n\r\n", start, end)
        lf = buf.find(b"\n\n", start, crlf + 3 if crlf >= 0 else end)
        if lf >= 0 and (crlf < 0 or lf < crlf):
            head_end, body = lf + 1, lf + 2
        elif crlf >= 0:
            head_end, body = crlf + 1, crlf + 3
        else:
            head_end = body = end
        scan_end = min(head_end, start + self.ctx.limits.max_header_bytes)
        block = bytes(buf[start:scan_end])
        pairs, stop = scan_header_lines(block, 0, len(block))
        if scan_end < head_end:
            self.ctx.warn(
                self._where(section),
                f"header block over {self.ctx.limits.max_header_bytes} bytes: rest not parsed",
            )
        elif stop < len(block):
            # a line that is no header: the body starts there (no blank line was sent)
            body = start + stop
            if pairs:
                self.ctx.warn(self._where(section), "no blank line after the headers")
        found: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            if key in _WANTED and key not in found:
                found[key] = value
        return found, body

    def entity(self, start: int, end: int, place: _Place) -> Iterator[Child]:
        self.ctx.budget.check_time()
        found, body = self.headers(start, end, place.section)
        ctype, params = header_params(found.get("content-type", ""))
        ctype = ctype.lower()
        if ctype.startswith("multipart/"):
            if place.depth >= self.ctx.limits.max_depth:
                self.ctx.unscanned(self._where(place.section or "1"), "MIME nesting too deep")
            else:
                boundary = self._boundary(params.get("boundary", ""), body, end, place.section)
                if boundary is not None:
                    digest = ctype == "multipart/digest"
                    yield from self.multipart(body, end, boundary, place, digest=digest)
                    return
        yield from self.leaf(found, ctype, params, (body, end), place)

    def _boundary(self, declared: str, body: int, end: int, section: str) -> bytes | None:
        """The boundary to split on: the declared one, else the first ``--`` line.

        Only a boundary whose first delimiter opens a part is usable; otherwise
        the body is scanned as one leaf.
        """
        for candidate in _encodings(declared) if declared else []:
            if _opens_part(self.buf, candidate, body, end):
                return candidate
        window = bytes(self.buf[body : min(end, body + _GUESS_WINDOW)])
        m = _GUESS_LINE.search(window)
        if m is None or not _opens_part(self.buf, m.group(1), body, end):
            return None
        self.ctx.warn(self._where(section or "1"), "multipart boundary not found: guessed")
        return m.group(1)

    def multipart(
        self, body: int, end: int, boundary: bytes, place: _Place, *, digest: bool
    ) -> Iterator[Child]:
        buf = self.buf
        delim = b"--" + boundary
        section = place.section
        default_type = "message/rfc822" if digest else "text/plain"
        pos, closing, content = _find_delimiter(buf, delim, body, end)
        index = 0
        while pos >= 0 and not self.stopped:
            if closing:
                pos, closing, content = _find_delimiter(buf, delim, content, end)
                if pos < 0:
                    return
                self.ctx.warn(self._where(section or "1"), "parts after the close delimiter")
                continue
            nxt, next_closing, next_content = _find_delimiter(buf, delim, content, end)
            index += 1
            child = f"{section}.{index}" if section else str(index)
            part_end = end if nxt < 0 else _strip_eol(buf, nxt, content)
            if nxt < 0:
                self.ctx.warn(self._where(child), "missing close delimiter")
            if self._count(child):
                yield from self.entity(
                    content, part_end, _Place(child, place.depth + 1, default_type)
                )
            pos, closing, content = nxt, next_closing, next_content

    def leaf(
        self,
        found: dict[str, str],
        ctype: str,
        params: dict[str, str],
        span: tuple[int, int],
        place: _Place,
    ) -> Iterator[Child]:
        section = place.section or "1"
        _, disp = header_params(found.get("content-disposition", ""))
        raw_name = disp.get("filename") or params.get("name")
        name = decode_rfc2047(raw_name).strip() if raw_name else None
        label = f"{section}/{safe_label(name)}" if name else section
        if (ctype or place.default_type) == "message/partial":
            self.ctx.unscanned(self._where(label), "message/partial")
        body, end = span
        if body >= end:
            return
        cte = transfer_encoding(found.get("content-transfer-encoding"))
        data = decode_body(self.buf, body, end, cte, self.ctx)
        if len(data) == 0:
            return
        yield Child(label=label, data=data, name=name or None, content_type=ctype or None)


def _encodings(value: str) -> list[bytes]:
    out = [value.encode("utf-8", "replace")]
    try:
        latin = value.encode("latin-1")
    except UnicodeEncodeError:
        return out
    if latin != out[0]:
        out.append(latin)
    return out


def _opens_part(buf: Buffer, boundary: bytes, start: int, end: int) -> bool:
    pos, closing, _ = _find_delimiter(buf, b"--" + boundary, start, end)
    return pos >= 0 and not closing


def _find_delimiter(buf: Buffer, delim: bytes, start: int, end: int) -> tuple[int, bool, int]:
    """Find the next delimiter line at or after ``start``.

    Returns ``(line start, is a close delimiter, offset after the line)``, or
    ``(-1, False, end)``.  A delimiter starts a line and is followed by blanks
    only; a close delimiter (``--B--``) may be followed by anything.
    """
    n = len(delim)
    pos = buf.find(delim, start, end)
    while pos >= 0:
        if pos == start or buf[pos - 1 : pos] == b"\n":
            nl = buf.find(b"\n", pos + n, end)
            line_end = end if nl < 0 else nl + 1
            after = pos + n
            if buf[after : after + 2] == b"--":
                return pos, True, line_end
            rest = buf[after:line_end] if line_end - after <= 256 else b"x"
            if not rest.strip():
                return pos, False, line_end
        pos = buf.find(delim, pos + 1, end)
    return -1, False, end


def _strip_eol(buf: Buffer, pos: int, floor: int) -> int:
    """The line break before a delimiter belongs to the delimiter."""
    if pos > floor and buf[pos - 1 : pos] == b"\n":
        pos -= 1
        if pos > floor and buf[pos - 1 : pos] == b"\r":
            pos -= 1
    return pos
