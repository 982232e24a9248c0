"""``mailwarden smtp-proxy``: the before-queue proxy (Postfix smtpd_proxy_filter).

Takes the same flags as ``smtp-filter`` (without ``--lmtp``; the downstream
must be an SMTP server); they override the ``[smtp_proxy]`` section.

SECURITY: as ``smtp-filter``; see ``mailwarden.intercept.smtp_proxy``.
"""

from __future__ import annotations

import argparse
import textwrap

from mailwarden.cli.common import config_from_args
from mailwarden.cli.smtp_filter_cmd import add_agent_options, agent_settings, setup_logging

DESCRIPTION = textwrap.dedent(
    """\
    Run the before-queue SMTP proxy. The MTA's SMTP server relays each
    client's MAIL, RCPT and DATA through it to the downstream (the MTA's
    after-filter SMTP server); at the end of DATA the proxy asks the daemon
    and the policy, and the client itself gets the refusal (5xx) or the
    temporary failure (4xx) before anything is queued, so no bounce is ever
    generated for a virus. Accepted mail is passed on, and the downstream's
    reply is the client's reply.
    """
)

EPILOG = textwrap.dedent(
    """\
    examples:
      mailwarden smtp-proxy
      mailwarden smtp-proxy --listen 127.0.0.1:10025 --downstream 127.0.0.1:10026

    docs/postfix.md shows the Postfix master.cf lines (smtpd_proxy_filter).
    exit status: 0 after SIGTERM/SIGINT, 2 on a configuration error or when
    the port cannot be opened.
    """
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "smtp-proxy",
        help="before-queue SMTP proxy (Postfix smtpd_proxy_filter)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_agent_options(parser, section="smtp_proxy", maildir=False)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mailwarden.intercept.smtp_proxy import run_proxy

    config = config_from_args(args)
    settings = agent_settings(args, "smtp_proxy")
    setup_logging("smtp-proxy", verbose=args.verbose)
    return run_proxy(settings, config)
