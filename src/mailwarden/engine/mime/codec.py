"""Content-Transfer-Encoding decoders: lenient base64 and quoted-printable, one-shot or streamed.

The splitter calls :func:`decode_body` for every leaf part; small parts are
decoded in one C call, large ones chunk by chunk through ``ctx.spool()`` so
memory stays bounded.  The decoders accept what mail clients accept::

    kind = transfer_encoding("  Base64 ")           # "base64"
    data = decode_body(buf, start, end, kind, ctx)  # bytes or a mapped spool

Base64 ignores every byte outside the alphabet, tolerates missing padding and
keeps decoding after a padding run (two encoded blobs glued together), where
``binascii`` alone would stop.  Quoted-printable leaves invalid escapes as they
are.  Unknown encodings (``x-foo``, ``8bit``, ``binary``, ``x-uuencode`` --
the text extractor decodes the last one) are passed through unchanged.

SECURITY: pure functions on untrusted bytes, no privileges.  Output is never
larger than the input for these encodings; it is still charged to the budget
so the walker's byte limit covers everything produced.
"""

from __future__ import annotations

import binascii
from typing import Protocol

from mailwarden.engine.objects import Buffer, WalkContext

BASE64 = "base64"
QUOTED_PRINTABLE = "quoted-printable"
IDENTITY = "identity"

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
#: everything a lenient decoder drops: all bytes but the alphabet and "="
_B64_JUNK = bytes(sorted(set(range(256)) - set(_B64_ALPHABET) - {ord("=")}))
_B64_TAIL_BLANKS = b"=\r\n\t "
#: input read per step when streaming a large part
CHUNK = 1 << 20


def transfer_encoding(value: str | None) -> str:
    """Map a Content-Transfer-Encoding value to BASE64, QUOTED_PRINTABLE or IDENTITY."""
    if not value:
        return IDENTITY
    v = value.strip().strip("\"'").lower()
    if "base64" in v or v == "b":
        return BASE64
    if v.startswith("quoted") or v in ("qp", "q"):
        return QUOTED_PRINTABLE
    return IDENTITY


def _b64_segment(seg: bytes) -> bytes:
    rem = len(seg) % 4
    if rem == 1:
        # a lone sextet carries no whole byte
        seg = seg[:-1]
    elif rem:
        seg += b"=" * (4 - rem)
    return binascii.a2b_base64(seg) if seg else b""


def b64decode_lenient(data: bytes) -> bytes:
    """Decode base64 the way mail clients do; never raises."""
    pad = data.find(b"=")
    if pad < 0 or not data[pad:].strip(_B64_TAIL_BLANKS):
        try:
            return binascii.a2b_base64(data)
        except binascii.Error:
            pass
    dec = Base64Decoder()
    return dec.feed(data) + dec.flush()


class Decoder(Protocol):
    def feed(self, chunk: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class Base64Decoder:
    """Incremental lenient base64: carries the partial quantum between chunks."""

    def __init__(self) -> None:
        self._carry = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._carry + chunk.translate(None, _B64_JUNK)
        out: list[bytes] = []
        tail = data
        if b"=" in data:
            segments = data.split(b"=")
            out.extend(_b64_segment(seg) for seg in segments[:-1] if seg)
            tail = segments[-1]
        keep = len(tail) % 4
        self._carry = tail[len(tail) - keep :] if keep else b""
        whole = tail[: len(tail) - keep]
        if whole:
            out.append(binascii.a2b_base64(whole))
        return b"".join(out)

    def flush(self) -> bytes:
        rest, self._carry = self._carry, b""
        return _b64_segment(rest)


class QuotedPrintableDecoder:
    """Incremental quoted-printable: cuts at line ends so no escape is split."""

    def __init__(self) -> None:
        self._carry = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._carry + chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            # one huge line: keep back only an escape that may be incomplete
            tail = data[-2:]
            eq = tail.find(b"=")
            cut = len(data) if eq < 0 else len(data) - len(tail) + eq
        self._carry = data[cut:]
        return binascii.a2b_qp(data[:cut])

    def flush(self) -> bytes:
        rest, self._carry = self._carry, b""
        return binascii.a2b_qp(rest)


class IdentityDecoder:
    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def flush(self) -> bytes:
        return b""


def new_decoder(encoding: str) -> Decoder:
    if encoding == BASE64:
        return Base64Decoder()
    if encoding == QUOTED_PRINTABLE:
        return QuotedPrintableDecoder()
    return IdentityDecoder()


def decode_one_shot(raw: bytes, encoding: str) -> bytes:
    if encoding == BASE64:
        return b64decode_lenient(raw)
    if encoding == QUOTED_PRINTABLE:
        return binascii.a2b_qp(raw)
    return raw


def decode_body(buf: Buffer, start: int, end: int, encoding: str, ctx: WalkContext) -> Buffer:
    """Decode ``buf[start:end]``; the result is charged to ``ctx.budget``."""
    if end - start <= ctx.limits.spool_threshold:
        out = decode_one_shot(buf[start:end], encoding)
        ctx.budget.add_bytes(len(out))
        return out
    spool = ctx.spool()
    dec = new_decoder(encoding)
    for pos in range(start, end, CHUNK):
        ctx.budget.check_time()
        spool.write(dec.feed(buf[pos : min(end, pos + CHUNK)]))
    spool.write(dec.flush())
    return spool.getvalue()
