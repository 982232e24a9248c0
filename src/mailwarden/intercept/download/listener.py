"""The listening side of a download proxy: plain and implicit-TLS listeners, session cap.

::

    server = ProxyServer(settings, pipeline, session=run_session, busy=b"-ERR busy\\r\\n")
    await server.start()        # listening on listen (and listen_tls with a certificate)
    server.reload()             # SIGHUP: the configuration's policy again
    await server.stop()

``session(client, tls)`` is the protocol's coroutine for one client
connection (``client`` holds its reader and writer); it owns the
connection to the real server.  The cap on sessions answers one more client
with ``busy`` and closes it.

SECURITY: listens where the configuration says (loopback by default).  The
implicit-TLS listener exists only with a certificate.  Every session is
cancelled on stop, so no half-served message outlives the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mailwarden.intercept.download.settings import ProxySettings
from mailwarden.intercept.download.tls import buffered
from mailwarden.intercept.download.transparent import original_destination
from mailwarden.intercept.pipeline import Pipeline

log = logging.getLogger("mailwarden.intercept.download")


@dataclass
class Client:
    """One client connection; ``tls`` turns True after STARTTLS/STLS or on the TLS port."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    tls: bool
    address: str | None
    #: where the client meant to connect before a firewall REDIRECT (transparent mode)
    original: tuple[str, int] | None = None

    async def start_tls(self, ctx: ssl.SSLContext) -> None:
        """TLS from here on; plain text the client pipelined after its STARTTLS is refused
        (it would otherwise count as sent over TLS) by ending the session."""
        if buffered(self.reader):
            raise ssl.SSLError("the client sent data after STARTTLS")
        await self.writer.start_tls(ctx)
        self.tls = True


Session = Callable[[Client], Awaitable[None]]


class ProxyServer:
    """See the module documentation."""

    def __init__(
        self,
        settings: ProxySettings,
        pipeline: Pipeline,
        *,
        session: Session,
        busy: bytes,
        tls_context: ssl.SSLContext | None,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.session = session
        self.busy = busy
        self.tls_context = tls_context
        self.config_files: list[str] = []
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[object]] = set()

    @property
    def ports(self) -> list[int]:
        """The ports listened on (the plain one first), once started."""
        return [int(s.sockets[0].getsockname()[1]) for s in self._servers if s.sockets]

    async def start(self) -> None:
        s = self.settings
        self._servers.append(
            await asyncio.start_server(self._accept(False), s.listen_host, s.listen_port)
        )
        if s.listen_tls is not None and self.tls_context is not None:
            host, port = s.listen_tls
            self._servers.append(
                await asyncio.start_server(
                    self._accept(True),
                    host,
                    port,
                    ssl=self.tls_context,
                    ssl_handshake_timeout=s.timeout,
                )
            )

    def _accept(
        self, tls: bool
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("peername")
            client = Client(reader, writer, tls, str(peer[0]) if peer else None)
            if self.settings.transparent:
                client.original = original_destination(writer.get_extra_info("socket"))
            if len(self._tasks) >= self.settings.max_sessions:
                with contextlib.suppress(OSError):
                    writer.write(self.busy)
                    await writer.drain()
                writer.close()
                return
            task = asyncio.current_task()
            if task is not None:
                self._tasks.add(task)
            try:
                await self.session(client)
            except (OSError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
                log.info("session from %s ended: %s", client.address, exc)
            except Exception:
                log.exception("session from %s failed", client.address)
            finally:
                if task is not None:
                    self._tasks.discard(task)
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

        return accept

    def reload(self) -> None:
        self.pipeline.reload_from(self.config_files)

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        scanner = self.pipeline.scanner
        close = getattr(scanner, "close", None)
        if close is not None:
            await close()
