"""Read the message an MTA or MDA writes to our standard input.

::

    intake = read_message(sys.stdin.buffer, threshold=1 << 20)
    intake.raw          # the message, without an mbox "From " line
    intake.from_line    # b"From sender@example.org Thu Jan  1 00:00:00 2026\\n" or b""

Postfix's local(8) and pipe(8) with ``flags=F``, and Exim's pipe transport
by default, put an mbox ``From `` envelope line in front of the header.  It
is not part of the message: it is kept apart (the scan, the quarantine and a
later release see the message alone) and written back in front of the
delivered copy, where procmail and maildrop expect it.

The message is read in pieces into a :class:`~mailwarden.intercept.spool.MessageSpool`
(memory up to the threshold, then an unlinked temporary file), so reading a
large message never holds it twice.

SECURITY: the input is hostile.  Nothing is parsed here beyond finding the
first line; an empty input is refused (:class:`IntakeError`) rather than
delivered as an empty message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from mailwarden.errors import MailwardenError
from mailwarden.intercept.spool import MessageSpool

_PIECE = 64 * 1024
#: an mbox envelope line longer than this is not one: it stays in the message
_MAX_FROM_LINE = 4096


class IntakeError(MailwardenError):
    """Standard input holds no message."""


@dataclass(frozen=True, slots=True)
class Intake:
    raw: bytes
    from_line: bytes = b""


def read_message(stream: BinaryIO, *, threshold: int) -> Intake:
    """The message on ``stream``; see the module documentation."""
    first = _read(stream)
    from_line = _envelope_line(first)
    while from_line and from_line == first and len(first) <= _MAX_FROM_LINE:
        # the line may go on past the first piece: read until its end is seen
        more = _read(stream)
        if not more:
            break
        first += more
        from_line = _envelope_line(first)
    spool = MessageSpool(threshold)
    try:
        spool.write(first[len(from_line) :])
        while piece := _read(stream):
            spool.write(piece)
        if spool.size == 0 or (spool.size < 4096 and not spool.getvalue().strip()):
            raise IntakeError("no message on standard input")
        return Intake(spool.getvalue(), from_line)
    finally:
        spool.close()


def _read(stream: BinaryIO) -> bytes:
    # read1 returns what the pipe has instead of waiting to fill the piece
    read1 = getattr(stream, "read1", None)
    data = read1(_PIECE) if read1 is not None else stream.read(_PIECE)
    return bytes(data or b"")


def _envelope_line(head: bytes) -> bytes:
    """The leading ``From `` line of ``head`` (with its line end), or b""."""
    if not head.startswith(b"From "):
        return b""
    end = head.find(b"\n", 0, _MAX_FROM_LINE + 1)
    if end < 0:
        return head if len(head) <= _MAX_FROM_LINE else b""
    return head[: end + 1]
