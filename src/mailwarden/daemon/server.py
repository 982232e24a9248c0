"""The daemon's front end: listeners, connection limits, signals, pid file, reload.

``mailwarden daemon`` calls :func:`run`; tests and ``mailwarden serve`` may
run :class:`Server` inside their own event loop::

    server = Server(settings)
    await server.start()        # loads the first generation, then listens
    await server.wait_closed()  # until SIGTERM, SHUTDOWN or server.shutdown()

The front end is one asyncio process that accepts connections, speaks the
protocol and enforces every limit; it holds no database and never scans.
Scans run in worker processes (``pool.py``), so a slow or hostile message
never stalls the protocol for other clients.  SIGHUP and RELOAD load a new
database beside the serving one; SIGTERM, SIGINT and SHUTDOWN stop
accepting, let running requests finish (up to ``scan_timeout``) and exit.

SECURITY: the unix socket is created with ``socket_mode`` (0660) and
``socket_group`` before anyone can connect (the umask is tightened while it
is bound); TCP is off unless configured, and a non-loopback address is
logged as a warning.  The daemon needs no privileges beyond reading the
signature files and the paths clients ask it to scan; run it as its own user
(the systemd unit does).  A stale socket file is replaced only when nothing
answers on it, so a second daemon cannot steal a live one's socket, and
anything else at its path is refused (``mailwarden.unixsocket``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mailwarden import __version__
from mailwarden.daemon.connection import Connection
from mailwarden.daemon.pidfile import running_daemon
from mailwarden.daemon.pool import Generation, PoolOptions, WorkerPool, start_loader
from mailwarden.daemon.protocol import CLAMAV_COMPAT, TOO_MANY_CONNECTIONS
from mailwarden.daemon.session import Context, serve_connection
from mailwarden.daemon.settings import DaemonSettings, is_loopback
from mailwarden.daemon.stats import Counters, Snapshot, render
from mailwarden.errors import MailwardenError
from mailwarden.unixsocket import bind_unix

log = logging.getLogger("mailwarden.daemon")


class DaemonStartError(MailwardenError):
    """The daemon could not start: database, socket or pid file."""


class Server:
    def __init__(self, settings: DaemonSettings) -> None:
        self.settings = settings
        self.counters = Counters()
        self.pool = WorkerPool(
            PoolOptions(
                workers=settings.worker_count,
                queue=settings.queue,
                scan_timeout=settings.scan_timeout,
            ),
            self._start_generation,
        )
        self.context = Context(
            settings=settings,
            pool=self.pool,
            counters=self.counters,
            version_text=self.version_text,
            stats_text=self.stats_text,
            database=self.database,
            request_reload=self.request_reload,
            request_shutdown=self.request_shutdown,
        )
        self._listeners: list[tuple[socket.socket, bool]] = []
        self._accepting: list[asyncio.Task[None]] = []
        self._connections: set[asyncio.Task[None]] = set()
        self._closed = asyncio.Event()
        self._stopping = False
        self._background: set[asyncio.Task[Any]] = set()
        self.tcp_address: tuple[str, int] | None = None

    # --- start and stop ------------------------------------------------------------

    async def _start_generation(self, number: int, workers: int) -> Generation:
        return await start_loader(
            number,
            workers,
            engine_settings=self.settings.engine,
            factory=self.settings.backend_factory,
        )

    async def start(self, on_listening: Callable[[], object] | None = None) -> None:
        """Bind, write the pid file, call ``on_listening``, then load the database.

        The listeners are bound first, as clamd does, so that a daemon started
        as root can drop to its user in ``on_listening`` before the loader and
        its workers exist; clients that connect while it loads wait in the
        listen queue.
        """
        from mailwarden.daemon.pool import GenerationFailed

        # before anything else: a second daemon on the same paths is a mistake
        # to report at once, not after the database is in memory
        holder = running_daemon(self.settings.pid_file, self.settings.socket)
        if holder:
            raise DaemonStartError(f"{holder} (in use); stop it first")
        try:
            if self.settings.socket:
                self._listeners.append((_bind_unix(self.settings), True))
            if self.settings.tcp:
                sock = _bind_tcp(*self.settings.tcp)
                self.tcp_address = sock.getsockname()[:2]
                self._listeners.append((sock, False))
        except OSError as exc:
            self._close_listeners()
            raise DaemonStartError(f"cannot listen: {exc}") from exc
        if not self._listeners:
            raise DaemonStartError("nothing to listen on: set [daemon] socket or tcp")
        try:
            _write_pid_file(self.settings.pid_file)
            if on_listening is not None:
                on_listening()
            await self.pool.start()
        except (GenerationFailed, MailwardenError) as exc:
            self._close_listeners()
            self._remove_pid_file()
            if isinstance(exc, GenerationFailed):
                raise DaemonStartError(f"cannot load the signature database: {exc}") from exc
            raise
        for sock, unix in self._listeners:
            self._accepting.append(asyncio.create_task(self._accept_loop(sock, unix)))
        where = [self.settings.socket] if self.settings.socket else []
        if self.tcp_address:
            where.append(f"{self.tcp_address[0]}:{self.tcp_address[1]}")
        log.info(
            "mailwarden daemon %s listening on %s with %d workers",
            __version__,
            ", ".join(where),
            self.settings.worker_count,
        )

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_shutdown)
        loop.add_signal_handler(signal.SIGINT, self.request_shutdown)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)

    def request_shutdown(self) -> None:
        if not self._stopping:
            self._stopping = True
            self._background_task(self.shutdown())

    def request_reload(self) -> None:
        log.info("reload requested")
        self._background_task(self.pool.reload())

    def _background_task(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def shutdown(self) -> None:
        self._stopping = True
        log.info("shutting down")
        for task in self._accepting:
            task.cancel()
        self._close_listeners()
        if self._connections:
            _done, pending = await asyncio.wait(
                set(self._connections), timeout=self.settings.scan_timeout
            )
            for task in pending:
                task.cancel()
        await self.pool.close()
        self._remove_pid_file()
        log.info("stopped")
        self._closed.set()

    def _close_listeners(self) -> None:
        for sock, unix in self._listeners:
            sock.close()
            if unix:
                with contextlib.suppress(OSError):
                    os.unlink(self.settings.socket)
        self._listeners.clear()

    def _remove_pid_file(self) -> None:
        if self.settings.pid_file:
            with contextlib.suppress(OSError):
                os.unlink(self.settings.pid_file)

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # --- connections -----------------------------------------------------------------

    async def _accept_loop(self, listener: socket.socket, unix: bool) -> None:
        loop = asyncio.get_running_loop()
        listener.setblocking(False)
        while True:
            try:
                sock, _addr = await loop.sock_accept(listener)
            except OSError as exc:
                # EMFILE and friends: wait instead of spinning
                log.warning("accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            if not unix:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(sock, unix=unix)
            if len(self._connections) >= self.settings.max_connections:
                task = asyncio.create_task(_refuse(conn))
            else:
                task = asyncio.create_task(serve_connection(conn, self.context))
                self._connections.add(task)
                task.add_done_callback(self._connections.discard)
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    # --- what clients ask about --------------------------------------------------------

    def version_text(self) -> str:
        gen = self.pool.current
        if gen is None or not gen.info.version:
            return f"ClamAV {CLAMAV_COMPAT}"
        return f"ClamAV {CLAMAV_COMPAT}/{gen.info.version}/{time.ctime(gen.info.loaded_at)}"

    def database(self) -> dict[str, Any]:
        gen = self.pool.current
        if gen is None:
            return {}
        return {
            "version": gen.info.version,
            "signatures": gen.info.signatures,
            "generation": gen.number,
        }

    def pids(self) -> list[int]:
        pids = [os.getpid()]
        for gen in (self.pool.current, *self.pool.retired):
            if gen is not None:
                pids.append(gen.process.pid)
                pids.extend(w.pid for w in gen.workers)
        return pids

    def stats_text(self) -> str:
        gen = self.pool.current
        return render(
            Snapshot(
                live=self.pool.live,
                idle=self.pool.idle,
                max_workers=self.settings.worker_count,
                idle_timeout=self.settings.idle_timeout,
                queued=self.pool.queued,
                queue_limit=self.settings.queue,
                active=self.pool.active(),
                pids=self.pids(),
                db_version=gen.info.version if gen else "",
                signatures=gen.info.signatures if gen else 0,
                generation=gen.number if gen else 0,
                loaded_at=gen.info.loaded_at if gen else 0.0,
                counters=self.counters,
                rejected=self.pool.rejected,
                timeouts=self.pool.timeouts,
                worker_deaths=self.pool.worker_deaths,
                connections=len(self._connections),
                reloads=self.pool.reloads,
                last_reload=self.pool.last_reload,
                daemon_version=__version__,
            )
        )


async def _refuse(conn: Connection) -> None:
    await conn.send(TOO_MANY_CONNECTIONS.encode() + b"\n")
    await conn.close(linger=0.5)


def _bind_unix(settings: DaemonSettings) -> socket.socket:
    return bind_unix(
        settings.socket,
        mode=settings.socket_mode,
        group=settings.socket_group,
        group_key="socket_group",
        owner_name="mailwarden daemon",
    )


def _bind_tcp(host: str, port: int) -> socket.socket:
    if not is_loopback(host):
        log.warning(
            "listening on TCP %s:%d: the protocol has no authentication, "
            "make sure a firewall guards this port",
            host,
            port,
        )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(socket.SOMAXCONN)
    return sock


def _write_pid_file(path: str) -> None:
    if not path:
        return
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "w", encoding="ascii") as fh:
            fh.write(f"{os.getpid()}\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise DaemonStartError(f"cannot write pid file {path}: {exc}") from exc


async def serve(
    settings: DaemonSettings,
    on_ready: Callable[[], None] | None = None,
    on_listening: Callable[[], object] | None = None,
) -> None:
    """Run the daemon until it is told to stop.

    ``on_listening`` runs once the sockets are bound and the pid file written
    (the command drops root there), ``on_ready`` after it.
    """
    server = Server(settings)
    await server.start(on_listening)
    server.install_signal_handlers()
    if on_ready is not None:
        on_ready()
    await server.wait_closed()


def run(
    settings: DaemonSettings,
    on_ready: Callable[[], None] | None = None,
    on_listening: Callable[[], object] | None = None,
) -> int:
    asyncio.run(serve(settings, on_ready, on_listening))
    return 0
