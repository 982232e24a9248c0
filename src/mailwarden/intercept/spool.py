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
import re
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

    ``alive`` is called about once a second while data flows, to keep the session's idle timer
    from closing a slow but steady transfer.  Raises
    :class:`asyncio.IncompleteReadError` when the client goes away.
    """
    # The reader is asked for everything up to the next ".<CRLF>" (or a
    # buffer's worth), never past it, so pipelined commands after the end of
    # DATA stay unread; each piece is cleaned with bytes methods, not line by line.
    too_big = False
    state = _START
    loop = asyncio.get_running_loop()
    touched = loop.time()
    while True:
        try:
            piece = await reader.readuntil(b".\r\n")
            found = True
        except asyncio.LimitOverrunError as exc:
            # no ".<CRLF>" starts in these bytes, so they can be taken whole
            piece = await reader.readexactly(max(exc.consumed, 1))
            found = False
        if alive is not None and loop.time() - touched > 1.0:
            # the idle timer only needs to hear of progress now and then
            touched = loop.time()
            alive()
        if found:
            head = piece[:-3]
            if head.endswith(b"\r\n") or (not head and state == _START):
                _keep(spool, _clean(head, state), max_size, too_big)
                break
        cleaned = _clean(piece, state)
        state = _state_after(piece, state)
        if not too_big:
            too_big = _keep(spool, cleaned, max_size, too_big)
    return DataStatus.TOO_BIG if too_big or spool.size > max_size else DataStatus.OK


#: where the previous piece ended: at a line start after CRLF (or the start
#: of DATA), at a line start after a bare LF, after a CR, or inside a line
_START, _LF, _CR, _MID = "start", "lf", "cr", "mid"
_BARE_LF = re.compile(rb"(?<!\r)\n")


def _state_after(piece: bytes, before: str) -> str:
    if not piece:
        return before
    if piece.endswith(b"\r\n") or (piece == b"\n" and before == _CR):
        return _START
    if piece.endswith(b"\n"):
        return _LF
    return _CR if piece.endswith(b"\r") else _MID


def _clean(piece: bytes, state: str) -> bytes:
    """Remove dot-stuffing and make line ends CRLF, knowing how the last piece ended."""
    prefix = {_START: b"\r\n", _LF: b"\n", _CR: b"\r"}.get(state, b"")
    text = prefix + piece
    if b"\n." in text:
        text = text.replace(b"\n.", b"\n")
    if text.count(b"\n") != text.count(b"\r\n"):
        text = _BARE_LF.sub(b"\r\n", text)
    # the prefix stood for bytes already written; a bare "\n" prefix became "\r\n"
    return text[len(prefix) + (prefix == b"\n") :]


def _keep(spool: MessageSpool, data: bytes, max_size: int, too_big: bool) -> bool:
    """Write ``data`` unless the message is or becomes too big; True once it is."""
    if too_big:
        return True
    if spool.size + len(data) > max_size:
        spool.discard()
        spool.size = max_size + 1
        return True
    spool.write(data)
    return False
