"""The POP3 scanning proxy (``mailwarden pop3-proxy``), in front of the real POP3 server.

Public API::

    server = await start_download_proxy(settings, config, POP3)   # [pop3_proxy] settings
    run_download_proxy(settings, config, POP3)                    # the process

Modules: ``codec`` (multi-line responses, dot-stuffing, TOP, CAPA),
``session`` (one client, relayed and scanned); :data:`POP3` says how
``download.serve`` starts it.

SECURITY: see ``session``: every RETR and TOP is scanned before a byte of
the message reaches the client; failures answer ``-ERR``.
"""

from mailwarden.intercept.pop3.session import POP3, Pop3Session

__all__ = ["POP3", "Pop3Session"]
