"""Start a download proxy: the daemon client, the pipeline, the TLS contexts, the listeners.

::

    IMAP = ProxyProtocol("imap-proxy", ImapSession, busy=b"* BYE ...\\r\\n")
    server = await start_download_proxy(settings, config, IMAP)   # listening
    server.ports; await server.stop()
    run_download_proxy(settings, config, IMAP)                    # the process: blocks

SECURITY: wiring only; needs no privileges (the default ports are above 1024).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from mailwarden.config import Config
from mailwarden.daemon import AsyncDaemonClient
from mailwarden.intercept.download.listener import Client, ProxyServer
from mailwarden.intercept.download.session import ProxySession
from mailwarden.intercept.download.settings import ProxySettings
from mailwarden.intercept.download.tls import client_context, server_context
from mailwarden.intercept.download.verdicts import DownloadScanner
from mailwarden.intercept.pipeline import Pipeline, Scanner
from mailwarden.intercept.runner import run


@dataclass(frozen=True, slots=True)
class ProxyProtocol:
    """One download protocol: its agent name, its session, its "too busy" line."""

    agent: str
    session: type[ProxySession]
    busy: bytes


async def start_download_proxy(
    settings: ProxySettings,
    config: Config,
    protocol: ProxyProtocol,
    *,
    scanner: Scanner | None = None,
) -> ProxyServer:
    """Build the proxy and start listening."""
    agent, session, busy = protocol.agent, protocol.session, protocol.busy
    host = settings.hostname or str(config["headers"]["hostname"]) or socket.getfqdn()
    daemon = scanner or AsyncDaemonClient(settings.daemon_socket, timeout=settings.scan_timeout)
    pipeline = Pipeline.from_config(config, daemon, host=host)
    download = DownloadScanner(
        pipeline,
        agent=agent,
        host=host,
        on_failure=settings.on_failure,
        max_size=settings.max_message_size,
        cache_entries=settings.cache_entries,
    )
    listen_tls = client_context(settings)
    upstream_tls = server_context(settings)

    async def serve(client: Client) -> None:
        await session(
            client, settings, download, client_tls=listen_tls, server_tls=upstream_tls
        ).run()

    server = ProxyServer(settings, pipeline, session=serve, busy=busy, tls_context=listen_tls)
    server.config_files = list(config.files)
    await server.start()
    return server


def run_download_proxy(settings: ProxySettings, config: Config, protocol: ProxyProtocol) -> int:
    """The proxy's process: serve until SIGTERM."""
    where = (
        f"{settings.listen_host}:{settings.listen_port} -> "
        f"{settings.server_host}:{settings.server_port}"
    )
    return run(
        lambda: start_download_proxy(settings, config, protocol),
        name=protocol.agent,
        where=where,
        config=config,
    )
