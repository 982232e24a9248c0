"""What every download-proxy session has: both connections, the settings, the login.

::

    class Pop3Session(ProxySession):
        async def run(self) -> None: ...       # the protocol

    session = Pop3Session(client, settings, scanner, client_tls=ctx, server_tls=upstream)
    await session.run()

SECURITY: holds the client's login name once the server accepted it, for
per-user policy and logs; never a password.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl

from mailwarden.intercept.download.listener import Client
from mailwarden.intercept.download.settings import ProxySettings
from mailwarden.intercept.download.tls import open_server
from mailwarden.intercept.download.verdicts import DownloadScanner

log = logging.getLogger("mailwarden.intercept.download")


class ProxySession:
    """Base of the POP3 and IMAP sessions; see the module documentation."""

    def __init__(
        self,
        client: Client,
        settings: ProxySettings,
        scanner: DownloadScanner,
        *,
        client_tls: ssl.SSLContext | None,
        server_tls: ssl.SSLContext | None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.scanner = scanner
        self.client_tls = client_tls
        self.server_tls = server_tls
        #: the login name the server accepted (None before, or when it cannot be known)
        self.user: str | None = None
        #: the connection to the real server, once open
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter

    #: the line the client gets when the server cannot be reached, and when the
    #: session breaks (the protocol's own words)
    unreachable: bytes = b""
    broken: bytes = b""
    #: the protocol's parse errors, which end the session with ``broken``
    errors: tuple[type[Exception], ...] = ()
    #: the read buffer towards the server (the longest line it may send)
    server_limit = 1024 * 1024

    async def run(self) -> None:
        """Connect, greet, then one client command after the other until the end."""
        try:
            self.reader, self.writer = await open_server(
                self.settings,
                self.server_tls,
                limit=self.server_limit,
                target=self.client.original,
            )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            log.warning("cannot reach the server: %s", exc)
            await self._send(self.unreachable)
            return
        try:
            await self._greet()
            while True:
                line = await self._client_line()
                if not line or not await self._command(line):
                    return
        except Exception as exc:
            if not isinstance(exc, (TimeoutError, ssl.SSLError, *self.errors)):
                raise
            log.warning("session from %s: %s", self.client.address, exc)
            with contextlib.suppress(OSError):
                await self._send(self.broken)
        finally:
            self.writer.close()

    async def _greet(self) -> None:
        """Relay the server's greeting (after TLS to the server when configured)."""
        raise NotImplementedError

    async def _client_line(self) -> bytes:
        """The next command line; b"" when the client left."""
        raise NotImplementedError

    async def _command(self, line: bytes) -> bool:
        """Handle one command; False once the session is over."""
        raise NotImplementedError

    async def _send(self, data: bytes) -> None:
        """To the client; waits while a slow client's buffer is full."""
        self.client.writer.write(data)
        await self.client.writer.drain()

    def _logged_in(self, user: str | None) -> None:
        self.user = user
        log.info("session from %s: user %s logged in", self.client.address, user)
