"""IMAP wire format (RFC 3501, 9051, 7888 LITERAL+, 3516 BINARY): responses and
command lines with their literals, and the tokens inside them.

::

    raw = await read_response(reader, limit=50_000_000, timeout=120)  # literals included
    literal_at_end(b'a LOGIN {5}\\r\\n')     # -> (5, synchronizing=True) or None
    end = skip_value(raw, pos)              # past one value: atom, "quoted", {n} literal, (list)
    astring(raw, pos)                       # -> (bytes, end) of an atom, quoted string or literal

SECURITY: everything parsed here is untrusted.  A response is bounded by
``limit`` (:class:`ImapError` past it), literal sizes are digits only, and
the parsers walk the bytes once, raising :class:`ImapError` on anything
malformed, never another exception.
"""

from __future__ import annotations

import asyncio
import re

_LITERAL = re.compile(rb"~?\{(\d{1,12})(\+?)\}\r?\n\Z")
_ATOM_END = b' ()[]{"\r\n'
MAX_LINE = 1024 * 1024


class ImapError(Exception):
    """Malformed or oversized IMAP from either side."""


def literal_at_end(line: bytes) -> tuple[int, bool] | None:
    """(size, synchronizing) when ``line`` ends with a literal's announcement."""
    match = _LITERAL.search(line[-40:])
    if match is None:
        return None
    return int(match.group(1)), match.group(2) != b"+"


async def read_line(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """One line with its line end; b"" at the end of the stream."""
    try:
        line = await asyncio.wait_for(reader.readuntil(b"\n"), timeout)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ImapError("the connection closed inside a line") from None
        return b""
    except asyncio.LimitOverrunError:
        raise ImapError("over-long line") from None
    return line


async def read_response(reader: asyncio.StreamReader, *, limit: int, timeout: float) -> bytes:
    """A whole response, literals included; b"" at the end of the stream."""
    out = bytearray()
    while True:
        line = await read_line(reader, timeout)
        if not line:
            if out:
                raise ImapError("the server closed the connection inside a response")
            return b""
        out += line
        literal = literal_at_end(line)
        if literal is None:
            return bytes(out)
        size = literal[0]
        if len(out) + size > limit:
            raise ImapError(f"response over {limit} octets")
        try:
            out += await asyncio.wait_for(reader.readexactly(size), timeout)
        except asyncio.IncompleteReadError:
            raise ImapError("the server closed the connection inside a literal") from None


def skip_value(buf: bytes, pos: int) -> int:
    """The position just past the value starting at ``pos``."""
    if pos >= len(buf):
        raise ImapError("value expected")
    char = buf[pos : pos + 1]
    if char == b"(":
        pos += 1
        while True:
            while buf[pos : pos + 1] == b" ":
                pos += 1
            if buf[pos : pos + 1] == b")":
                return pos + 1
            if pos >= len(buf):
                raise ImapError("unterminated list")
            pos = skip_value(buf, pos)
    if char == b'"':
        return _quoted(buf, pos)[1]
    if char in (b"{", b"~"):
        return _literal(buf, pos)[1]
    return atom_end(buf, pos, b" )\r\n(")


def atom_end(buf: bytes, pos: int, stops: bytes = b" )\r") -> int:
    """The end of an atom or item name at ``pos``; a ``[section]`` inside is skipped
    whole (it may hold spaces and parentheses)."""
    end = pos
    while end < len(buf) and buf[end] not in stops:
        if buf[end : end + 1] == b"[":
            close = buf.find(b"]", end)
            if close < 0:
                raise ImapError("unterminated section")
            end = close
        end += 1
    if end == pos:
        raise ImapError("atom expected")
    return end


def _quoted(buf: bytes, pos: int) -> tuple[bytes, int]:
    out = bytearray()
    i = pos + 1
    while i < len(buf):
        char = buf[i : i + 1]
        if char == b"\\":
            out += buf[i + 1 : i + 2]
            i += 2
            continue
        if char == b'"':
            return bytes(out), i + 1
        if char in (b"\r", b"\n"):
            break
        out += char
        i += 1
    raise ImapError("unterminated quoted string")


def _literal(buf: bytes, pos: int) -> tuple[bytes, int]:
    match = re.compile(rb"~?\{(\d{1,12})\+?\}\r\n").match(buf, pos)
    if match is None:
        raise ImapError("malformed literal")
    start = match.end()
    end = start + int(match.group(1))
    if end > len(buf):
        raise ImapError("literal longer than the data")
    return buf[start:end], end


def astring(buf: bytes, pos: int) -> tuple[bytes, int]:
    """An atom, quoted string or literal at ``pos`` -> (its content, end)."""
    char = buf[pos : pos + 1]
    if char == b'"':
        return _quoted(buf, pos)
    if char in (b"{", b"~"):
        return _literal(buf, pos)
    end = pos
    while end < len(buf) and buf[end : end + 1] not in (b" ", b"\r", b"\n", b"(", b")"):
        end += 1
    if end == pos:
        raise ImapError("astring expected")
    return buf[pos:end], end


def nstring(data: bytes | None) -> bytes:
    """``data`` as a literal, or NIL."""
    if data is None:
        return b"NIL"
    return b"{%d}\r\n" % len(data) + data


def quote(text: bytes) -> bytes:
    return b'"' + text.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
