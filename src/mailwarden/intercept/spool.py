"""Receive the DATA of an SMTP transaction into memory or an unlinked temporary file.

:func:`read_data` reads lines up to the lone ``.`` and writes them to a
:class:`MessageSpool`: dot-stuffing removed, every line ending made CRLF
(bare LF and bare CR+LF mixes from broken clients become one form), lines of
any length passed through in pieces, at most ``max_size`` bytes kept; past
that the rest is read and thrown away so the client still gets a clean
``552`` and the session stays in step::

    spool = MessageSpool(threshold=1 << 20)
    status = await read_data(reader, spool, max_size=50 << 20, piece=65536, alive=touch)
    raw = spool.getvalue()          # after DataStatus.OK
    spool.close()

Only ``<CRLF>.<CRLF>`` ends the data: a ``.`` line ended by a bare LF does
not, so a message cannot hide a second transaction from a server that reads
line ends differently (SMTP smuggling).

SECURITY: the input is hostile.  Memory is bounded by the threshold (the rest
goes to a 0600 unlinked file in $TMPDIR) and by the reader's line limit; the
total is bounded by ``max_size``.  NUL and 8-bit bytes pass through unchanged
for the scanner to judge.
"""

from __future__ import annotations

import asyncio
import enum
import tempfile
from collections.abc import Callable
from typing import IO


class DataStatus(enum.Enum):
    OK = "ok"
    TOO_BIG = "too big"


class MessageSpool:
    """Bytes in memory up to ``threshold``, then an unlinked temporary file."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.size = 0
        self._buffer = bytearray()
        self._file: IO[bytes] | None = None

    @property
    def spilled(self) -> bool:
        return self._file is not None

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self._file is None:
            self._buffer += data
            if len(self._buffer) > self.threshold:
                # the unlinked file disappears with the process, whatever happens;
                # close() releases it earlier
                self._file = tempfile.TemporaryFile(prefix="mailwarden-")  # noqa: SIM115
                self._file.write(self._buffer)
                self._buffer = bytearray()
        else:
            self._file.write(data)

    def discard(self) -> None:
        """Forget the contents (the message is over the size limit)."""
        self.close()
        self._buffer = bytearray()

    def getvalue(self) -> bytes:
        if self._file is None:
            return bytes(self._buffer)
        self._file.flush()
        self._file.seek(0)
        return self._file.read()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


async def read_data(
    reader: asyncio.StreamReader,
    spool: MessageSpool,
    *,
    max_size: int,
    alive: Callable[[], None] | None = None,
) -> DataStatus:
    """Read DATA up to ``<CRLF>.<CRLF>`` into ``spool``; see the module documentation.

    ``alive`` is called every 256 KiB or so, to keep the session's idle timer
    from closing a slow but steady transfer.  Raises
    :class:`asyncio.IncompleteReadError` when the client goes away.
    """
    too_big = False
    at_line_start = True
    since_alive = 0
    while True:
        try:
            line = await reader.readuntil(b"\n")
            complete = True
        except asyncio.LimitOverrunError as exc:
            # a line longer than the reader's limit: take what is there as a piece
            line = await reader.readexactly(max(exc.consumed, 1))
            complete = False
        if at_line_start:
            if line == b".\r\n":
                break
            if line[:1] == b".":
                line = line[1:]
        if complete:
            if line.endswith(b"\r\n"):
                pass
            else:
                line = line[:-1] + b"\r\n"
        elif line.endswith(b"\r"):
            # keep a CR that may start the line's CRLF with the next piece
            line = line[:-1]
            rest = await reader.readexactly(1)
            if rest == b"\n":
                line += b"\r\n"
                complete = True
            else:
                line += b"\r" + rest
        at_line_start = complete
        if not too_big:
            if spool.size + len(line) > max_size:
                too_big = True
                spool.discard()
            else:
                spool.write(line)
        since_alive += len(line)
        if alive is not None and since_alive > 256 * 1024:
            since_alive = 0
            alive()
    return DataStatus.TOO_BIG if too_big else DataStatus.OK
