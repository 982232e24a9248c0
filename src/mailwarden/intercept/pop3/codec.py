"""POP3 wire format (RFC 1939, 2449): multi-line responses, dot-stuffing, TOP, CAPA, LIST.

::

    body = await read_multiline(reader, limit=50_000_000, timeout=120)  # stuffed, with ".\\r\\n"
    raw = unstuff(body)                   # the message as stored
    wire = stuff(raw)                     # back to the wire, terminator included
    top(raw, 10)                          # header, blank line, first 10 body lines
    filter_capa(lines, stls=True)         # CAPA lines the proxy can honour

SECURITY: the server's responses are untrusted: a multi-line response is
bounded by ``limit`` (:class:`TooLarge` after the rest was read and
dropped, so the session stays in step), and every parser here is linear
and raises :class:`Pop3Error` on malformed input, never anything else.
"""

from __future__ import annotations

import asyncio
import re

_TERMINATOR = b"\r\n.\r\n"
_STUFFED = re.compile(rb"(?m)^\.")
_CHUNK = 256 * 1024


class Pop3Error(Exception):
    """The server sent something that is not POP3."""


class TooLarge(Pop3Error):
    """A multi-line response was larger than the limit; it was read and dropped."""


async def read_multiline(reader: asyncio.StreamReader, *, limit: int, timeout: float) -> bytes:
    """The lines of a multi-line response after its status line, terminator included."""
    buffer = bytearray()
    dropped = False
    while not (buffer == b".\r\n" or buffer.endswith(_TERMINATOR)):
        chunk = await asyncio.wait_for(reader.read(_CHUNK), timeout)
        if not chunk:
            raise Pop3Error("the server closed the connection inside a multi-line response")
        buffer += chunk
        if len(buffer) > limit + len(_TERMINATOR):
            # keep the tail only: enough to see the terminator arrive
            dropped = True
            del buffer[: len(buffer) - len(_TERMINATOR)]
    if dropped:
        raise TooLarge(f"response over {limit} octets")
    return bytes(buffer)


def unstuff(body: bytes) -> bytes:
    """The message from a multi-line response body (terminator included)."""
    if body == b".\r\n":
        return b""
    if not body.endswith(_TERMINATOR):
        raise Pop3Error("multi-line response without its terminator")
    return _STUFFED.sub(b"", body[:-3])


def stuff(raw: bytes) -> bytes:
    """``raw`` as a multi-line response body, ending in CRLF and the terminator."""
    data = _STUFFED.sub(b"..", raw)
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def top(raw: bytes, lines: int) -> bytes:
    """RFC 1939 TOP: the header, the blank line, then ``lines`` lines of the body."""
    split = raw.find(b"\r\n\r\n")
    if split < 0:
        return raw
    head, body = raw[: split + 4], raw[split + 4 :]
    if lines <= 0 or not body:
        return head
    kept = body.split(b"\r\n")
    return head + b"\r\n".join(kept[:lines]) + (b"\r\n" if len(kept) > lines else b"")


def filter_capa(lines: list[bytes], *, stls: bool) -> list[bytes]:
    """CAPA lines (no terminator) the proxy can honour: the server's STLS is
    the proxy's business, offered when it has a certificate for this client."""
    out = [line for line in lines if line.split(b" ", 1)[0].strip().upper() != b"STLS"]
    if stls:
        out.append(b"STLS\r\n")
    return out


def split_lines(body: bytes) -> list[bytes]:
    """The lines of a multi-line body (each with CRLF), terminator removed."""
    if body == b".\r\n":
        return []
    return [line + b"\r\n" for line in body[:-5].split(b"\r\n")]


def parse_listing(lines: list[bytes]) -> dict[int, bytes]:
    """``n value`` lines (LIST, UIDL) -> {n: value}; malformed lines are skipped."""
    out: dict[int, bytes] = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit():
            out[int(parts[0])] = parts[1]
    return out


def ok(line: bytes) -> bool:
    return line.startswith(b"+OK")
