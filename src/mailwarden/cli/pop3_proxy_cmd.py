"""``mailwarden pop3-proxy``: the POP3 scanning proxy in front of the real POP3 server.

Flags override the ``[pop3_proxy]`` section: ``--listen``, ``--server``,
``--daemon-socket``, ``-c``.  :func:`add_proxy_options` and
:func:`proxy_settings` are shared with ``imap-proxy``.

SECURITY: runs unprivileged; it needs the daemon's socket, the quarantine
store, its certificate and key when TLS is configured, and its ports (1110
and 1995 on loopback by default need no privilege).  See
``mailwarden.intercept.pop3``.
"""

from __future__ import annotations

import argparse
import importlib
import textwrap
from typing import TYPE_CHECKING

from mailwarden.cli.common import add_config_option, config_from_args
from mailwarden.cli.smtp_filter_cmd import setup_logging

if TYPE_CHECKING:
    from mailwarden.intercept.download import ProxySettings

DESCRIPTION = textwrap.dedent(
    """\
    Run the POP3 scanning proxy. Mail clients connect to it instead of the
    POP3 server; it relays the session to the server and scans every message
    a client retrieves (RETR, TOP) through the daemon before a byte of it is
    sent. Clean messages pass byte for byte; an infected one is replaced by
    a warning message that keeps the original's From, Date, Subject and
    Message-ID (LIST and STAT sizes follow); a message that cannot be
    scanned gets -ERR, so the client tries again later. STLS and an
    implicit-TLS listener use the proxy's own certificate (tls_cert).
    """
)

EPILOG = textwrap.dedent(
    """\
    examples:
      mailwarden pop3-proxy
      mailwarden pop3-proxy --listen 0.0.0.0:110 --server 127.0.0.1:10110

    docs/pop3-imap.md explains the settings, TLS and transparent mode.
    exit status: 0 after SIGTERM/SIGINT, 2 on a configuration error or when
    the port cannot be opened.
    """
)


def add_proxy_options(parser: argparse.ArgumentParser, *, section: str) -> None:
    add_config_option(parser)
    parser.add_argument(
        "--listen", metavar="HOST:PORT", help=f"address to listen on ([{section}] listen)"
    )
    parser.add_argument(
        "--server", metavar="HOST:PORT", help=f"the real server ([{section}] server)"
    )
    parser.add_argument(
        "--daemon-socket",
        metavar="PATH",
        help="the scanning daemon's unix socket ([daemon] socket)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")


def proxy_settings(args: argparse.Namespace, section: str) -> ProxySettings:
    from mailwarden.intercept.download import ProxySettings

    return ProxySettings.from_config(
        config_from_args(args),
        section,
        listen=args.listen,
        server=args.server,
        daemon_socket=args.daemon_socket,
    )


def register_proxy(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    kind: str,
    *,
    help_text: str,
    description: str,
    epilog: str,
) -> None:
    """The subcommand of a download proxy: ``kind`` is ``pop3`` or ``imap``."""
    parser = sub.add_parser(
        f"{kind}-proxy",
        help=help_text,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_proxy_options(parser, section=f"{kind}_proxy")
    parser.set_defaults(func=lambda args: run_proxy(args, kind))


def run_proxy(args: argparse.Namespace, kind: str) -> int:
    from mailwarden.intercept.download.serve import run_download_proxy

    protocol = getattr(importlib.import_module(f"mailwarden.intercept.{kind}"), kind.upper())
    settings = proxy_settings(args, f"{kind}_proxy")
    setup_logging(f"{kind}-proxy", verbose=args.verbose)
    code: int = run_download_proxy(settings, config_from_args(args), protocol)
    return code


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    register_proxy(
        sub,
        "pop3",
        help_text="POP3 proxy that scans every retrieved message",
        description=DESCRIPTION,
        epilog=EPILOG,
    )
