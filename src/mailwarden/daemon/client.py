"""Clients of the daemon, for every interception agent: synchronous and asyncio.

Usage::

    client = DaemonClient("/run/mailwarden/daemon.sock")      # or tcp="127.0.0.1:3310"
    verdict = client.scan_bytes(raw, envelope)                 # MAILSCAN -> Verdict
    client.instream(raw)                                       # "stream: OK" (clamd's reply)
    client.ping(); client.version(); client.stats(); client.reload()

    async with AsyncDaemonClient("/run/mailwarden/daemon.sock") as client:
        verdict = await client.scan_bytes(raw, envelope)

Connections are reused: each idle connection is an open IDSESSION, so an
agent pays for one connect, not one per message; a connection the daemon
closed in the meantime (idle timeout, restart) is noticed and replaced, and
a request that failed on a reused connection is retried once on a new one
(scanning twice is harmless).  Every failure raises a
:class:`DaemonError`: :class:`DaemonUnavailable` when the daemon cannot be
reached or does not answer within ``timeout`` (agents turn it into a
temporary failure), :class:`DaemonReplyError` when it answers with an error.

SECURITY: the client trusts the daemon's replies only as far as their
format: replies are bounded in size and a malformed one is an error, never
a clean verdict.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import socket
import threading
from types import TracebackType
from typing import Any

from mailwarden.daemon import protocol as p
from mailwarden.errors import MailwardenError
from mailwarden.message import Envelope
from mailwarden.verdict import Verdict

DEFAULT_SOCKET = "/run/mailwarden/daemon.sock"
#: a reply longer than this is treated as a protocol error
MAX_REPLY = 16 * 1024 * 1024
_CHUNK = 256 * 1024


class DaemonError(MailwardenError):
    """Scanning through the daemon failed; agents answer with a temporary failure."""


class DaemonUnavailable(DaemonError):
    """The daemon cannot be reached, closed the connection, or did not answer in time."""


class DaemonReplyError(DaemonError):
    """The daemon answered with an error (queue full, size limit, bad request...)."""


# --- shared request and reply handling ------------------------------------------


def _target(socket_path: str | None, tcp: str | tuple[str, int] | None) -> tuple[str, Any]:
    if tcp is not None:
        if isinstance(tcp, str):
            host, _, port = tcp.rpartition(":")
            return "tcp", (host.strip("[]"), int(port))
        return "tcp", tcp
    return "unix", socket_path or DEFAULT_SOCKET


def _mailscan_request(data: bytes | memoryview, envelope: Envelope | None) -> list[Any]:
    env = json.dumps((envelope or Envelope()).to_dict(), separators=(",", ":"))
    return [p.command("MAILSCAN", env), *p.chunks(data)]


def _verdict_from_reply(text: str) -> Verdict:
    if not text.startswith("{"):
        raise DaemonReplyError(f"daemon: {text}")
    try:
        return Verdict.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise DaemonReplyError(f"daemon: malformed MAILSCAN reply: {exc}") from exc


def _strip_id(text: str, expected: int) -> str:
    if not expected:
        return text
    got, rest = p.split_session_reply(text)
    if got != expected:
        raise DaemonUnavailable(f"daemon: reply for request {got}, expected {expected}: {text}")
    return rest


class _Conn:
    """A blocking connection, optionally inside IDSESSION."""

    def __init__(self, sock: socket.socket, session: bool) -> None:
        self.sock = sock
        self.session = session
        self.last_id = 0
        self.reused = False

    def stale(self) -> bool:
        """Readable while idle means the daemon closed it (or said it timed out)."""
        readable, _w, _x = select.select([self.sock], [], [], 0)
        return bool(readable)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class DaemonClient:
    """Synchronous client; safe to share between threads."""

    def __init__(
        self,
        socket_path: str | None = None,
        *,
        tcp: str | tuple[str, int] | None = None,
        timeout: float = 150.0,
        connect_timeout: float = 5.0,
        reuse: bool = True,
        max_idle: int = 4,
    ) -> None:
        self.kind, self.address = _target(socket_path, tcp)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.reuse = reuse
        self.max_idle = max_idle
        self._idle: list[_Conn] = []
        self._lock = threading.Lock()

    # --- public API ------------------------------------------------------------------

    def ping(self) -> bool:
        return self._request([p.command("PING")]) == p.PONG

    def version(self) -> str:
        return self._request([p.command("VERSION")])

    def stats(self) -> str:
        return self._request([p.command("STATS")])

    def reload(self) -> None:
        reply = self._request([p.command("RELOAD")], session=False)
        if reply != p.RELOADING:
            raise DaemonReplyError(f"daemon: unexpected reply to RELOAD: {reply}")

    def instream(self, data: bytes | memoryview) -> str:
        """clamd's reply for ``data``: ``stream: OK``, ``stream: NAME FOUND`` or ``... ERROR``."""
        return self._request([p.command("INSTREAM"), *p.chunks(data)])

    def scan_bytes(self, data: bytes | memoryview, envelope: Envelope | None = None) -> Verdict:
        """The whole verdict for one message (MAILSCAN)."""
        return _verdict_from_reply(self._request(_mailscan_request(data, envelope)))

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def __enter__(self) -> DaemonClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- plumbing ----------------------------------------------------------------------

    def _request(self, parts: list[Any], *, session: bool = True) -> str:
        use_session = session and self.reuse
        conn = self._checkout(use_session)
        try:
            reply = self._exchange(conn, parts)
        except DaemonUnavailable:
            conn.close()
            if not conn.reused:
                raise
            conn = self._connect(use_session)
            try:
                reply = self._exchange(conn, parts)
            except DaemonError:
                conn.close()
                raise
        except BaseException:
            conn.close()
            raise
        self._checkin(conn)
        return reply

    def _checkout(self, session: bool) -> _Conn:
        if session:
            with self._lock:
                while self._idle:
                    conn = self._idle.pop()
                    if conn.stale():
                        conn.close()
                        continue
                    conn.reused = True
                    return conn
        return self._connect(session)

    def _checkin(self, conn: _Conn) -> None:
        if conn.session:
            with self._lock:
                if len(self._idle) < self.max_idle:
                    self._idle.append(conn)
                    return
            with contextlib.suppress(OSError):
                conn.sock.sendall(p.command("END"))
        conn.close()

    def _connect(self, session: bool) -> _Conn:
        family = socket.AF_UNIX if self.kind == "unix" else socket.AF_INET
        if self.kind == "tcp" and ":" in self.address[0]:
            family = socket.AF_INET6
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(self.connect_timeout)
        try:
            sock.connect(self.address)
            if self.kind == "tcp":
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(self.timeout)
            if session:
                sock.sendall(p.command("IDSESSION"))
        except OSError as exc:
            sock.close()
            raise DaemonUnavailable(
                f"cannot connect to the daemon at {self.address}: {exc}"
            ) from exc
        return _Conn(sock, session)

    def _exchange(self, conn: _Conn, parts: list[Any]) -> str:
        expected = conn.last_id + 1 if conn.session else 0
        send_error: OSError | None = None
        try:
            for part in parts:
                conn.sock.sendall(part)
        except TimeoutError as exc:
            raise DaemonUnavailable(f"daemon did not read the request in time: {exc}") from exc
        except OSError as exc:
            # it may have answered before closing (size limit): read that reply
            send_error = exc
        text = self._read_reply(conn, send_error)
        conn.last_id = expected
        return _strip_id(text, expected)

    def _read_reply(self, conn: _Conn, send_error: OSError | None) -> str:
        buf = bytearray()
        try:
            while not buf.endswith(b"\0"):
                data = conn.sock.recv(_CHUNK)
                if not data:
                    break
                buf += data
                if len(buf) > MAX_REPLY:
                    raise DaemonUnavailable("daemon reply too long")
        except TimeoutError as exc:
            raise DaemonUnavailable(f"daemon did not answer within {self.timeout:g}s") from exc
        except OSError as exc:
            if not buf:
                raise DaemonUnavailable(f"connection to the daemon failed: {exc}") from exc
        if not buf.endswith(b"\0"):
            # "COMMAND READ TIMED OUT\n" and similar end with a newline
            text = bytes(buf).strip().decode("utf-8", "replace")
            why = text or (str(send_error) if send_error else "no reply")
            raise DaemonUnavailable(f"daemon closed the connection: {why}")
        if conn.session and b"\0" in buf[:-1]:
            raise DaemonUnavailable("daemon sent more than one reply")
        return bytes(buf[:-1]).decode("utf-8", "replace")


class AsyncDaemonClient:
    """The same API for asyncio agents; concurrent requests use separate connections."""

    def __init__(
        self,
        socket_path: str | None = None,
        *,
        tcp: str | tuple[str, int] | None = None,
        timeout: float = 150.0,
        connect_timeout: float = 5.0,
        reuse: bool = True,
        max_idle: int = 8,
    ) -> None:
        self.kind, self.address = _target(socket_path, tcp)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.reuse = reuse
        self.max_idle = max_idle
        self._idle: list[_AsyncConn] = []

    async def ping(self) -> bool:
        return await self._request([p.command("PING")]) == p.PONG

    async def version(self) -> str:
        return await self._request([p.command("VERSION")])

    async def stats(self) -> str:
        return await self._request([p.command("STATS")])

    async def reload(self) -> None:
        reply = await self._request([p.command("RELOAD")], session=False)
        if reply != p.RELOADING:
            raise DaemonReplyError(f"daemon: unexpected reply to RELOAD: {reply}")

    async def instream(self, data: bytes | memoryview) -> str:
        return await self._request([p.command("INSTREAM"), *p.chunks(data)])

    async def scan_bytes(
        self, data: bytes | memoryview, envelope: Envelope | None = None
    ) -> Verdict:
        return _verdict_from_reply(await self._request(_mailscan_request(data, envelope)))

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()

    async def __aenter__(self) -> AsyncDaemonClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _request(self, parts: list[Any], *, session: bool = True) -> str:
        use_session = session and self.reuse
        conn = await self._checkout(use_session)
        try:
            reply = await self._exchange(conn, parts)
        except DaemonUnavailable:
            await conn.close()
            if not conn.reused:
                raise
            conn = await self._connect(use_session)
            try:
                reply = await self._exchange(conn, parts)
            except BaseException:
                await conn.close()
                raise
        except BaseException:
            await conn.close()
            raise
        await self._checkin(conn)
        return reply

    async def _checkout(self, session: bool) -> _AsyncConn:
        if session:
            while self._idle:
                conn = self._idle.pop()
                if conn.stale():
                    await conn.close()
                    continue
                conn.reused = True
                return conn
        return await self._connect(session)

    async def _checkin(self, conn: _AsyncConn) -> None:
        if conn.session and len(self._idle) < self.max_idle:
            self._idle.append(conn)
            return
        if conn.session:
            with contextlib.suppress(OSError):
                conn.writer.write(p.command("END"))
        await conn.close()

    async def _connect(self, session: bool) -> _AsyncConn:
        try:
            async with asyncio.timeout(self.connect_timeout):
                if self.kind == "unix":
                    reader, writer = await asyncio.open_unix_connection(
                        self.address, limit=MAX_REPLY
                    )
                else:
                    reader, writer = await asyncio.open_connection(*self.address, limit=MAX_REPLY)
            if session:
                writer.write(p.command("IDSESSION"))
        except (OSError, TimeoutError) as exc:
            raise DaemonUnavailable(
                f"cannot connect to the daemon at {self.address}: {exc}"
            ) from exc
        return _AsyncConn(reader, writer, session)

    async def _exchange(self, conn: _AsyncConn, parts: list[Any]) -> str:
        expected = conn.last_id + 1 if conn.session else 0
        try:
            async with asyncio.timeout(self.timeout):
                try:
                    for part in parts:
                        conn.writer.write(part)
                    await conn.writer.drain()
                except OSError:
                    pass  # it may have answered before closing: read that reply
                data = await conn.reader.readuntil(b"\0")
        except TimeoutError as exc:
            raise DaemonUnavailable(f"daemon did not answer within {self.timeout:g}s") from exc
        except asyncio.IncompleteReadError as exc:
            text = exc.partial.strip().decode("utf-8", "replace") or "no reply"
            raise DaemonUnavailable(f"daemon closed the connection: {text}") from exc
        except asyncio.LimitOverrunError as exc:
            raise DaemonUnavailable("daemon reply too long") from exc
        except OSError as exc:
            raise DaemonUnavailable(f"connection to the daemon failed: {exc}") from exc
        conn.last_id = expected
        return _strip_id(data[:-1].decode("utf-8", "replace"), expected)


class _AsyncConn:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, session: bool
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.session = session
        self.last_id = 0
        self.reused = False

    def stale(self) -> bool:
        # a reply waiting while idle (a timeout notice) also shows up as a
        # failed read on the next request, which is then retried
        return self.reader.at_eof()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await self.writer.wait_closed()
