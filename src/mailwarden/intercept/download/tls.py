"""TLS contexts of the download proxies: the clients' side and the server's side.

::

    listen_ctx = client_context(settings)     # None without a certificate
    upstream = server_context(settings)       # verifies the real server

The proxy terminates the clients' TLS (implicit TLS listener, STARTTLS,
STLS) with its own certificate and opens its own TLS session to the server.

SECURITY: the server's certificate is always verified, against
``server_ca_file`` when set and the system's CAs otherwise, with host-name
checking against ``server_name``; TLS 1.2 is the floor on both sides.
"""

from __future__ import annotations

import asyncio
import ssl

from mailwarden.errors import ConfigError
from mailwarden.intercept.download.settings import ProxySettings


def client_context(settings: ProxySettings) -> ssl.SSLContext | None:
    """The context for connections from mail clients, or None without a certificate."""
    if not settings.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the certificate: {exc}", key=f"{settings.section}.tls_cert"
        ) from exc
    return ctx


def server_context(settings: ProxySettings) -> ssl.SSLContext | None:
    """The context for the connection to the real server, or None for plain text."""
    if settings.server_tls == "none":
        return None
    try:
        ctx = ssl.create_default_context(cafile=settings.server_ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the CA file: {exc}", key=f"{settings.section}.server_ca_file"
        ) from exc
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


async def open_server(
    settings: ProxySettings,
    ctx: ssl.SSLContext | None,
    *,
    limit: int,
    target: tuple[str, int] | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to the real server (``target``, else ``server``): TLS from the first byte
    for ``server_tls = "tls"``, plain text otherwise (the protocol's STARTTLS/STLS
    follows for ``"starttls"``)."""
    implicit = ctx if settings.server_tls == "tls" else None
    host, port = target or (settings.server_host, settings.server_port)
    return await asyncio.wait_for(
        asyncio.open_connection(
            host,
            port,
            ssl=implicit,
            server_hostname=settings.server_name if implicit else None,
            limit=limit,
        ),
        settings.server_timeout,
    )


def buffered(reader: asyncio.StreamReader) -> bool:
    """Whether plain-text bytes wait in ``reader``: sent before TLS started, they must
    not be read as if they came through it (command injection, CVE-2011-0411)."""
    return bool(getattr(reader, "_buffer", b""))


async def upgrade_server(
    settings: ProxySettings,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    ctx: ssl.SSLContext | None,
) -> None:
    """TLS on the connection to the server after its STARTTLS/STLS said yes."""
    if buffered(reader):
        raise ssl.SSLError("the server sent data after agreeing to STARTTLS")
    if ctx is None:
        raise ValueError("STARTTLS to the server needs its TLS context")
    await asyncio.wait_for(
        writer.start_tls(ctx, server_hostname=settings.server_name), settings.server_timeout
    )
