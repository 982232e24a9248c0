"""The POP3 scanning proxy (``mailwarden pop3-proxy``), in front of the real POP3 server.

Public API::

    server = await start_pop3_proxy(settings, config)   # ProxySettings for [pop3_proxy]
    run_pop3_proxy(settings, config)                    # the process

Modules: ``codec`` (multi-line responses, dot-stuffing, TOP, CAPA),
``session`` (one client, relayed and scanned), ``proxy`` (wiring).

SECURITY: see ``session``: every RETR and TOP is scanned before a byte of
the message reaches the client; failures answer ``-ERR``.
"""

from mailwarden.intercept.pop3.proxy import build_scanner, run_pop3_proxy, start_pop3_proxy
from mailwarden.intercept.pop3.session import Pop3Session

__all__ = ["Pop3Session", "build_scanner", "run_pop3_proxy", "start_pop3_proxy"]
