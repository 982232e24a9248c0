"""``mailwarden pop3-proxy``: build the proxy from its settings, listen, run until SIGTERM.

::

    server = await start_pop3_proxy(settings, config)     # listening
    server.ports                                          # [plain, implicit TLS]
    await server.stop()
    run_pop3_proxy(settings, config)                      # the process: blocks

SECURITY: see ``session.py``; this module wires the daemon client, the
pipeline and the TLS contexts, and needs no privileges (1110 and 1995 are
unprivileged ports).
"""

from __future__ import annotations

import socket

from mailwarden.config import Config
from mailwarden.daemon import AsyncDaemonClient
from mailwarden.intercept.download import (
    Client,
    DownloadScanner,
    ProxyServer,
    ProxySettings,
    client_context,
    server_context,
)
from mailwarden.intercept.pipeline import Pipeline, Scanner
from mailwarden.intercept.pop3.session import Pop3Session
from mailwarden.intercept.runner import run


def build_scanner(
    settings: ProxySettings, config: Config, agent: str, scanner: Scanner | None
) -> tuple[Pipeline, DownloadScanner]:
    """The pipeline and the download scanner of a proxy (shared with the IMAP proxy)."""
    host = settings.hostname or str(config["headers"]["hostname"]) or socket.getfqdn()
    client = scanner or AsyncDaemonClient(settings.daemon_socket, timeout=settings.scan_timeout)
    pipeline = Pipeline.from_config(config, client, host=host)
    download = DownloadScanner(
        pipeline,
        agent=agent,
        host=host,
        on_failure=settings.on_failure,
        max_size=settings.max_message_size,
        cache_entries=settings.cache_entries,
    )
    return pipeline, download


async def start_pop3_proxy(
    settings: ProxySettings, config: Config, *, scanner: Scanner | None = None
) -> ProxyServer:
    pipeline, download = build_scanner(settings, config, "pop3-proxy", scanner)
    listen_tls = client_context(settings)
    upstream_tls = server_context(settings)

    async def session(client: Client) -> None:
        await Pop3Session(
            client, settings, download, client_tls=listen_tls, server_tls=upstream_tls
        ).run()

    server = ProxyServer(
        settings,
        pipeline,
        session=session,
        busy=b"-ERR [SYS/TEMP] Too many sessions, try again later\r\n",
        tls_context=listen_tls,
    )
    server.config_files = list(config.files)
    await server.start()
    return server


def run_pop3_proxy(settings: ProxySettings, config: Config) -> int:
    where = (
        f"{settings.listen_host}:{settings.listen_port} -> "
        f"{settings.server_host}:{settings.server_port}"
    )
    return run(lambda: start_pop3_proxy(settings, config), name="pop3-proxy", where=where)
