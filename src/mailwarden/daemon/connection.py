"""One client connection as the front end sees it: buffered reads with timeouts,
received descriptors, atomic replies.

The session handler drives it::

    conn = Connection(sock, unix=True)
    raw = await conn.read_command(timeout=30)     # RawCommand, or None at EOF
    data = await conn.read_exact(4, timeout=120)  # stream data after a command
    fd = conn.pop_fd()                            # a descriptor sent with FILDES
    await conn.send(b"PONG\\0")
    await conn.close(linger=1.0)

Reads use ``recvmsg`` on unix sockets so that descriptors (FILDES) arrive with
the bytes they were sent with; asyncio's stream API cannot receive them.

SECURITY: every read is bounded in size (the command framer's limit, the
caller's counts) and in time (the caller's timeout), so a client that sends
too much or nothing ties up neither memory nor the event loop.  At most
:data:`MAX_PENDING_FDS` received descriptors are kept; more are closed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket

from mailwarden.daemon.channel import close_fds, take_fds, wait_readable
from mailwarden.daemon.protocol import CommandFramer, RawCommand

READ_SIZE = 256 * 1024
MAX_PENDING_FDS = 8
_ANCILLARY = socket.CMSG_SPACE(MAX_PENDING_FDS * 4)


class ClientGone(Exception):
    """The client closed the connection or reset it."""


class Connection:
    def __init__(self, sock: socket.socket, *, unix: bool) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.unix = unix
        self.framer = CommandFramer()
        self.fds: collections.deque[int] = collections.deque()
        self.eof = False
        self.broken = False
        self._write_lock = asyncio.Lock()
        self._loop = asyncio.get_running_loop()

    # --- reading ----------------------------------------------------------------

    async def _fill(self) -> None:
        """Read what the socket has (waiting for at least one byte)."""
        if self.eof:
            raise ClientGone("end of stream")
        try:
            if self.unix:
                data = await self._recvmsg()
            else:
                data = await self._loop.sock_recv(self.sock, READ_SIZE)
        except (ConnectionResetError, BrokenPipeError) as exc:
            self.eof = True
            raise ClientGone(str(exc)) from exc
        if not data:
            self.eof = True
            raise ClientGone("end of stream")
        self.framer.feed(data)

    async def _recvmsg(self) -> bytes:
        while True:
            try:
                data, ancillary, _flags, _addr = self.sock.recvmsg(READ_SIZE, _ANCILLARY)
            except BlockingIOError:
                await wait_readable(self.sock)
                continue
            fds = take_fds(ancillary)
            room = MAX_PENDING_FDS - len(self.fds)
            self.fds.extend(fds[:room])
            close_fds(fds[room:])
            return data

    async def read_command(self, timeout: float | None) -> RawCommand | None:
        """The next command, None at end of stream; TimeoutError when it takes too long.

        Raises :class:`~mailwarden.daemon.protocol.CommandTooLong` for a line
        without terminator past the framer's limit.
        """
        async with asyncio.timeout(timeout):
            while True:
                raw = self.framer.next_command(at_eof=self.eof)
                if raw is not None:
                    return raw
                if self.eof:
                    return None
                try:
                    await self._fill()
                except ClientGone:
                    continue

    async def read_exact(self, n: int, timeout: float) -> bytes:
        """Exactly ``n`` bytes; ClientGone at EOF, TimeoutError when the client stalls.

        The timeout applies to each wait for data, as clamd's ReadTimeout does,
        so a slow but steady client is not cut off.
        """
        while len(self.framer.buffer) < n:
            async with asyncio.timeout(timeout):
                await self._fill()
        return self.framer.take(n)

    async def read_some(self, most: int, timeout: float) -> bytes:
        """Between 1 and ``most`` bytes."""
        if not self.framer.buffer:
            async with asyncio.timeout(timeout):
                await self._fill()
        return self.framer.take(most)

    async def wait_fd(self, timeout: float) -> int | None:
        """The descriptor sent after FILDES, with the one carrier byte it came with.

        None when data arrives without a descriptor (or over TCP).
        """
        if not self.unix:
            return None
        async with asyncio.timeout(timeout):
            while not self.fds and not self.framer.buffer:
                await self._fill()
        if not self.fds:
            return None
        if self.framer.buffer[:1] == b"\0":
            self.framer.take(1)
        return self.fds.popleft()

    # --- writing ----------------------------------------------------------------

    async def send(self, data: bytes) -> bool:
        """Send one whole reply; False when the client is gone (replies are then dropped)."""
        if self.broken:
            return False
        async with self._write_lock:
            try:
                await self._loop.sock_sendall(self.sock, data)
            except OSError:
                self.broken = True
                return False
        return True

    async def close(self, *, linger: float = 0.0) -> None:
        """Close; with ``linger``, first let the client read the last reply.

        Closing a socket with unread input makes the kernel reset it, which can
        destroy a reply still in flight; so after an error that ends a
        connection early, the write side is shut and input drained briefly.
        """
        if linger > 0 and not self.broken:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)
            drained = 0
            with contextlib.suppress(TimeoutError, ClientGone, OSError):
                async with asyncio.timeout(linger):
                    while drained < 4 * READ_SIZE:
                        self.framer.buffer.clear()
                        await self._fill()
                        drained += len(self.framer.buffer)
        close_fds(list(self.fds))
        self.fds.clear()
        self.sock.close()
