"""``mailwarden imap-proxy``: the IMAP scanning proxy in front of the real POP3 server.

Flags override the ``[imap_proxy]`` section: ``--listen``, ``--server``,
``--daemon-socket``, ``-c``.  :func:`add_proxy_options` and
:func:`proxy_settings` are shared with ``imap-proxy``.

SECURITY: runs unprivileged; it needs the daemon's socket, the quarantine
store, its certificate and key when TLS is configured, and its ports (1143
and 1993 on loopback by default need no privilege).  See
``mailwarden.intercept.imap``.
"""

from __future__ import annotations

import argparse
import textwrap

from mailwarden.cli.pop3_proxy_cmd import register_proxy

DESCRIPTION = textwrap.dedent(
    """\
    Run the IMAP scanning proxy. Mail clients connect to it instead of the
    IMAP server; it relays the session (literals, pipelining, IDLE) and
    answers every FETCH of message content (BODY[], BODY.PEEK[], RFC822,
    BINARY[], sections and partial fetches) from the whole message, scanned
    once through the daemon and remembered by mailbox, UIDVALIDITY and UID.
    Clean messages pass byte for byte; an infected one is replaced by a
    warning message (RFC822.SIZE and BODYSTRUCTURE follow); a message that
    cannot be scanned is left out and the FETCH answered NO [UNAVAILABLE].
    STARTTLS and an implicit-TLS listener use the proxy's own certificate.
    """
)

EPILOG = textwrap.dedent(
    """\
    examples:
      mailwarden imap-proxy
      mailwarden imap-proxy --listen 0.0.0.0:143 --server 127.0.0.1:10143

    docs/pop3-imap.md explains the settings, TLS and transparent mode.
    exit status: 0 after SIGTERM/SIGINT, 2 on a configuration error or when
    the port cannot be opened.
    """
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    register_proxy(
        sub,
        "imap",
        help_text="IMAP proxy that scans every fetched message",
        description=DESCRIPTION,
        epilog=EPILOG,
    )
