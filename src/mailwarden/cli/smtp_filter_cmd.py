"""``mailwarden smtp-filter``: the after-queue content filter (Postfix content_filter).

Flags override the ``[smtp_filter]`` section for the common settings; the
supervisor (``mailwarden serve``) and the systemd unit start it with them.
:func:`add_agent_options` and :func:`agent_settings` are shared with
``smtp-proxy``.

SECURITY: runs unprivileged (the mailwarden user); it needs to connect to the
daemon's socket, write the quarantine store, and listen on its port (the
default, 10025 on loopback, needs no privilege).  See
``mailwarden.intercept.smtp_filter``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
from typing import TYPE_CHECKING

import structlog

from mailwarden.cli.common import add_config_option, config_from_args

if TYPE_CHECKING:
    from mailwarden.intercept.settings import SmtpSettings

DESCRIPTION = textwrap.dedent(
    """\
    Run the after-queue SMTP content filter. The MTA hands each message over
    by SMTP (or LMTP with --lmtp); the filter asks the daemon for a verdict,
    applies the policy and re-injects what is delivered into the downstream
    server (the MTA's re-injection port, or a local Maildir). The MTA gets
    250 only after the downstream accepted the message; when the daemon or
    the downstream cannot be reached it gets a temporary failure and keeps
    the mail in its queue.

    ESMTP: PIPELINING, 8BITMIME, SMTPUTF8, SIZE, DSN (passed on), XFORWARD
    (the original client carried through to the re-injection).
    """
)

EPILOG = textwrap.dedent(
    """\
    examples:
      mailwarden smtp-filter
      mailwarden smtp-filter --listen 127.0.0.1:10025 --downstream 127.0.0.1:10026
      mailwarden smtp-filter --lmtp --daemon-socket /run/mailwarden/daemon.sock
      mailwarden smtp-filter --downstream maildir:/var/mail/scanned   # no MTA needed

    docs/postfix.md shows the Postfix master.cf and main.cf lines.
    exit status: 0 after SIGTERM/SIGINT, 2 on a configuration error or when
    the port cannot be opened.
    """
)


def add_agent_options(parser: argparse.ArgumentParser, *, section: str, maildir: bool) -> None:
    """The flags every SMTP agent takes."""
    add_config_option(parser)
    parser.add_argument(
        "--listen", metavar="HOST:PORT", help=f"address to listen on ([{section}] listen)"
    )
    target = "HOST:PORT or maildir:PATH" if maildir else "HOST:PORT"
    parser.add_argument(
        "--downstream",
        metavar=target.replace(" or ", "|"),
        help=f"where accepted mail goes, {target} ([{section}] downstream)",
    )
    parser.add_argument(
        "--daemon-socket",
        metavar="PATH",
        help="the scanning daemon's unix socket ([daemon] socket)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log each session's start and end too"
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "smtp-filter",
        help="after-queue SMTP/LMTP content filter (Postfix content_filter)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_agent_options(parser, section="smtp_filter", maildir=True)
    parser.add_argument(
        "--lmtp",
        action="store_true",
        default=None,
        help="speak LMTP to the MTA: one reply per recipient ([smtp_filter] lmtp)",
    )
    parser.set_defaults(func=run)


def agent_settings(args: argparse.Namespace, section: str) -> SmtpSettings:
    """The agent's settings: configuration, then flags."""
    from mailwarden.intercept.settings import SmtpSettings

    return SmtpSettings.from_config(
        config_from_args(args),
        section,
        listen=args.listen,
        downstream=args.downstream,
        daemon_socket=args.daemon_socket,
        lmtp=getattr(args, "lmtp", None),
        allow_maildir=section == "smtp_filter",
    )


def setup_logging(name: str, *, verbose: bool) -> None:
    """Plain lines on standard error (journald and the supervisor stamp them); the
    per-message record as one JSON object per line on standard output."""
    structlog.configure(
        processors=[
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"mailwarden-{name}: %(levelname)s %(message)s"))
    logger = logging.getLogger("mailwarden")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)


def run(args: argparse.Namespace) -> int:
    from mailwarden.intercept.smtp_filter import run_filter

    config = config_from_args(args)
    settings = agent_settings(args, "smtp_filter")
    setup_logging("smtp-filter", verbose=args.verbose)
    return run_filter(settings, config)
