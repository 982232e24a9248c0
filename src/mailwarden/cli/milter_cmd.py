"""``mailwarden milter``: the mail filter for Sendmail and Postfix (milter protocol 6).

Flags override the ``[milter]`` section: ``--socket`` in Sendmail's
notation, ``--daemon-socket``, ``-c``.

SECURITY: see ``mailwarden.intercept.milter``; the command needs no
privileges beyond creating its socket.
"""

from __future__ import annotations

import argparse
import textwrap

from mailwarden.cli.common import add_config_option, config_from_args
from mailwarden.cli.smtp_filter_cmd import setup_logging

DESCRIPTION = textwrap.dedent(
    """\
    Run the milter. Sendmail (INPUT_MAIL_FILTER) and Postfix (smtpd_milters,
    non_smtpd_milters) send it each message before they queue it; at the end
    of DATA it asks the daemon and the policy and answers: the client gets
    the refusal (554, naming the signature) or the temporary failure (451)
    while it is still connected, and accepted mail gets the X-Virus-Scanned
    and X-Virus-Status headers. Quarantined mail goes to the quarantine
    store (and, with [milter] mta_hold, to the MTA's hold queue).
    """
)

EPILOG = textwrap.dedent(
    """\
    examples:
      mailwarden milter
      mailwarden milter --socket inet:8890@127.0.0.1
      mailwarden milter --socket unix:/var/spool/postfix/mailwarden/milter.sock

    docs/milter.md shows the Postfix lines (and why milter_default_action =
    tempfail), docs/sendmail.md the INPUT_MAIL_FILTER line.
    exit status: 0 after SIGTERM/SIGINT, 2 on a configuration error or when
    the socket cannot be opened.
    """
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "milter",
        help="mail filter for Sendmail and Postfix (milter protocol)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_option(parser)
    parser.add_argument(
        "--socket",
        metavar="unix:PATH|inet:PORT@HOST",
        help="where to listen, in Sendmail's notation ([milter] socket)",
    )
    parser.add_argument(
        "--daemon-socket",
        metavar="PATH",
        help="the scanning daemon's unix socket ([daemon] socket)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mailwarden.intercept.milter import MilterSettings, run_milter

    config = config_from_args(args)
    settings = MilterSettings.from_config(
        config, socket=args.socket, daemon_socket=args.daemon_socket
    )
    setup_logging("milter", verbose=args.verbose)
    return run_milter(settings, config)
