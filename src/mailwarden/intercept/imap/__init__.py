"""The IMAP scanning proxy (``mailwarden imap-proxy``), in front of the real IMAP server.

Public API::

    server = await start_download_proxy(settings, config, IMAP)   # [imap_proxy] settings
    run_download_proxy(settings, config, IMAP)                    # the process

Modules: ``wire`` (responses and literals, tokens), ``fetch`` (FETCH
responses and the rewritten FETCH command), ``sections`` (items cut from a
replacement message), ``session`` (one client, relayed and scanned); :data:`IMAP` says how
``download.serve`` starts it.

SECURITY: see ``session``: every content fetch is answered from a scanned
whole message; failures answer ``NO [UNAVAILABLE]``.
"""

from mailwarden.intercept.imap.fetch import (
    FetchCommand,
    FetchResponse,
    parse_fetch,
    parse_fetch_command,
)
from mailwarden.intercept.imap.session import IMAP, ImapSession

__all__ = [
    "IMAP",
    "FetchCommand",
    "FetchResponse",
    "ImapSession",
    "parse_fetch",
    "parse_fetch_command",
]
