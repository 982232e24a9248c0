"""What the POP3 and IMAP proxies share: settings, TLS, listeners, scanning, the warning.

Public API::

    settings = ProxySettings.from_config(config, "imap_proxy", listen=..., server=...)
    scanner = DownloadScanner(pipeline, agent="imap-proxy", ...)
    served = await scanner.check(raw, user=..., key=..., client=..., ref=...)
    warning_message(raw, found=..., status=..., note=..., host=..., size=len(raw))
    server = await start_download_proxy(settings, config, IMAP)   # IMAP: imap.session

Modules: ``settings``, ``tls`` (both sides' contexts, connecting to the
server), ``listener`` (plain and implicit-TLS listeners), ``verdicts`` (the
pipeline, the outcome mapping and the verdict cache), ``warning`` (the
replacement message), ``login`` (the user name from SASL), ``session`` (what
both protocols' sessions share), ``serve`` (:func:`start_download_proxy`), ``transparent``
(SO_ORIGINAL_DST).

SECURITY: see each module.  In short: nothing reaches a client unless the
daemon scanned it and the policy accepted it; a failure serves an error (or
a warning), never the original.
"""

from mailwarden.intercept.download.listener import Client, ProxyServer
from mailwarden.intercept.download.login import sasl_user
from mailwarden.intercept.download.settings import ProxySettings
from mailwarden.intercept.download.tls import (
    client_context,
    open_server,
    server_context,
    upgrade_server,
)
from mailwarden.intercept.download.verdicts import (
    CLEAN,
    DownloadScanner,
    Kind,
    Served,
    VerdictCache,
)
from mailwarden.intercept.download.warning import header_fields, pad, warning_message

__all__ = [
    "CLEAN",
    "Client",
    "DownloadScanner",
    "Kind",
    "ProxyServer",
    "ProxySettings",
    "Served",
    "VerdictCache",
    "client_context",
    "header_fields",
    "open_server",
    "pad",
    "sasl_user",
    "server_context",
    "upgrade_server",
    "warning_message",
]
