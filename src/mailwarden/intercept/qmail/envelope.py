"""qmail-queue's envelope: the bytes a client writes to its descriptor 1.

qmail-queue(8) defines it as the sender address preceded by ``F`` and
followed by a NUL, then each recipient preceded by ``T`` and followed by a
NUL, then one more NUL::

    F alice@example.org \\0 T bob@example.net \\0 T carol@example.net \\0 \\0

::

    parsed = parse_envelope(b"Fa@x\\0Tb@y\\0\\0")
    parsed.sender, parsed.recipients, parsed.raw   # raw: the exact bytes, to pass on
    parsed = read_envelope(fd)                     # reads up to the final NUL

The parser is strict where a mistake could lose or misroute mail and
answers every defect with :class:`EnvelopeError`, which the agent turns
into qmail-queue's 91 ("envelope format error", temporary): a missing
``F``, a missing NUL, an envelope cut short (the client closed descriptor 1
early), an unknown record type, or no recipient at all.  The bytes after
the final NUL are not read, as qmail-queue does not read them.

SECURITY: the envelope comes from the client program (qmail-smtpd, fed by
the network); addresses are kept as bytes decoded with ``surrogateescape``
for the policy and logs, and the original bytes are what the real
qmail-queue receives.  Size is bounded (:data:`MAX_ENVELOPE`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mailwarden.errors import MailwardenError

#: An envelope longer than this is refused (91) rather than held in memory.
MAX_ENVELOPE = 16 * 1024 * 1024
_PIECE = 64 * 1024


class EnvelopeError(MailwardenError):
    """The envelope does not follow qmail-queue(8)."""


@dataclass(frozen=True, slots=True)
class QmailEnvelope:
    sender: str
    recipients: tuple[str, ...]
    #: the envelope exactly as received, final NUL included
    raw: bytes


def parse_envelope(data: bytes) -> QmailEnvelope:
    """The envelope at the start of ``data``; see the module documentation."""
    end = envelope_end(data)
    if end is None:
        raise EnvelopeError(_incomplete(data))
    fields = data[1 : end - 1].split(b"\0")
    # data[:end] is "F" sender NUL ("T" recipient NUL)* NUL: the last field is empty
    sender, records = fields[0], fields[1:-1]
    recipients = tuple(_text(r[1:]) for r in records)
    if not recipients:
        raise EnvelopeError("envelope has no recipient")
    return QmailEnvelope(_text(sender), recipients, bytes(data[:end]))


def envelope_end(data: bytes) -> int | None:
    """The length of the complete envelope at the start of ``data``, or None if cut short.

    Raises :class:`EnvelopeError` as soon as ``data`` cannot start a valid envelope.
    """
    if not data:
        return None
    if data[:1] != b"F":
        raise EnvelopeError(f"envelope does not start with F (got {data[:1]!r})")
    pos = data.find(b"\0", 1)
    if pos < 0:
        return None
    pos += 1
    while pos < len(data):
        kind = data[pos : pos + 1]
        if kind == b"\0":
            return pos + 1
        if kind != b"T":
            raise EnvelopeError(f"unknown envelope record {kind!r} at byte {pos}")
        nul = data.find(b"\0", pos + 1)
        if nul < 0:
            return None
        pos = nul + 1
    return None


def read_envelope(fd: int, *, limit: int = MAX_ENVELOPE) -> QmailEnvelope:
    """Read the envelope from ``fd`` up to its final NUL; see the module documentation."""
    data = bytearray()
    while True:
        try:
            piece = os.read(fd, _PIECE)
        except OSError as exc:
            raise EnvelopeError(f"cannot read the envelope: {exc.strerror or exc}") from exc
        if not piece:
            # the client closed descriptor 1 before the final NUL
            raise EnvelopeError(_incomplete(bytes(data)))
        data += piece
        if len(data) > limit:
            raise EnvelopeError(f"envelope longer than {limit} bytes")
        if b"\0" not in piece and len(data) > len(piece):
            continue  # an envelope can only end on a NUL
        end = envelope_end(bytes(data))
        if end is not None:
            return parse_envelope(bytes(data[:end]))


def encode_envelope(sender: str, recipients: tuple[str, ...] | list[str]) -> bytes:
    """The envelope qmail-queue expects for ``sender`` and ``recipients``."""
    parts = [b"F" + _bytes(sender) + b"\0"]
    parts += [b"T" + _bytes(r) + b"\0" for r in recipients]
    return b"".join(parts) + b"\0"


def _incomplete(data: bytes) -> str:
    if not data:
        return "no envelope (descriptor 1 closed or empty)"
    return f"envelope cut short after {len(data)} bytes (missing NUL)"


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")
