"""The milter's listener: a unix or loopback TCP socket, one session per MTA connection.

::

    server = await start_milter(settings, config)     # listening
    server.address                                     # "unix:/run/mailwarden/milter.sock"
    await server.stop()

    run_milter(settings, config)                       # the process: until SIGTERM

Postfix opens one connection per SMTP session (per cleanup for
``non_smtpd_milters``), Sendmail one per SMTP session and per queue run.
At most ``max_sessions`` are served at once; one more is closed at once
(the MTA then applies its default action, a temporary failure when set up
as docs/milter.md says) and the burst is logged once, with a count when
it ends, so a flood cannot fill the log.

SECURITY: a unix socket is created with ``socket_mode`` (0660 by default:
the MTA's user must be in the socket's group) and no window in which others
could connect, after a stale socket file, and only a socket nobody answers
on, is removed (``mailwarden.unixsocket``); an inet listener is loopback
unless ``allow_remote`` (settings.py).  The process needs no privileges of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat

from mailwarden.config import Config
from mailwarden.daemon import AsyncDaemonClient
from mailwarden.intercept.milter.session import MilterSession
from mailwarden.intercept.milter.settings import MilterSettings
from mailwarden.intercept.pipeline import Pipeline, Scanner
from mailwarden.intercept.runner import run
from mailwarden.intercept.smtp_filter import header_host
from mailwarden.unixsocket import start_unix_server

log = logging.getLogger("mailwarden.intercept.milter")


class MilterServer:
    """See the module documentation."""

    def __init__(self, settings: MilterSettings, pipeline: Pipeline, *, host: str) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.host = host
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self._refused = 0
        #: the files the configuration came from, read again on SIGHUP
        self.config_files: list[str] = []

    @property
    def address(self) -> str:
        listen = self.settings.listen
        if listen.kind == "inet" and self._server is not None and self._server.sockets:
            port = self._server.sockets[0].getsockname()[1]
            return f"inet:{port}@{listen.host}"
        return str(listen)

    @property
    def active(self) -> int:
        return len(self._sessions)

    async def start(self) -> None:
        listen = self.settings.listen
        if listen.kind == "unix":
            self._server = await start_unix_server(
                self._accept, listen.path, mode=self.settings.socket_mode, owner_name="milter"
            )
        else:
            self._server = await asyncio.start_server(self._accept, listen.host, listen.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._sessions) >= self.settings.max_sessions:
            if self._refused == 0:
                log.warning(
                    "%d sessions open (max_sessions): refusing new connections",
                    len(self._sessions),
                )
            self._refused += 1
            writer.close()
            return
        if self._refused:
            log.warning("accepting connections again; %d were refused", self._refused)
            self._refused = 0
        peer = writer.get_extra_info("peername")
        name = f"MTA {peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "MTA"
        session = MilterSession(
            self.pipeline, self.settings, reader, writer, host=self.host, peer=name
        )
        task = asyncio.current_task()
        if task is not None:
            self._sessions.add(task)
        try:
            await session.run()
        finally:
            if task is not None:
                self._sessions.discard(task)

    def reload(self) -> None:
        """SIGHUP: take the policy from the configuration files again; sessions in
        progress finish with the policy they started with."""
        self.pipeline.reload_from(self.config_files)

    async def stop(self, grace: float = 30.0) -> None:
        """Stop listening, let sessions finish for ``grace`` seconds, then cut them."""
        if self._server is not None:
            self._server.close()
        if self._sessions:
            _, pending = await asyncio.wait(set(self._sessions), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        if self.settings.listen.kind == "unix":
            _remove_stale(self.settings.listen.path)
        scanner = self.pipeline.scanner
        if isinstance(scanner, AsyncDaemonClient):
            await scanner.close()


def _remove_stale(path: str) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(f"{path} exists and is not a socket")
    os.unlink(path)


async def start_milter(
    settings: MilterSettings, config: Config, *, scanner: Scanner | None = None
) -> MilterServer:
    """Build the milter from its settings and start listening."""
    scanner = scanner or AsyncDaemonClient(settings.daemon_socket, timeout=settings.scan_timeout)
    host = header_host(config)
    server = MilterServer(settings, Pipeline.from_config(config, scanner, host=host), host=host)
    server.config_files = list(config.files)
    await server.start()
    return server


def run_milter(settings: MilterSettings, config: Config) -> int:
    """The ``mailwarden milter`` process: serve until SIGTERM."""
    return run(
        lambda: start_milter(settings, config),
        name="milter",
        where=str(settings.listen),
        config=config,
        own=(settings.listen.path,) if settings.listen.kind == "unix" else (),
    )
