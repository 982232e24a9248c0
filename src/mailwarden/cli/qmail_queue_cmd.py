"""``mailwarden qmail-queue``: a qmail-queue that scans, then runs the real one.

qmail-smtpd and qmail-inject run it once per message, so :func:`main` is
reached straight from ``mailwarden.cli.main`` without loading the other
subcommands, and a bad command line exits with qmail-queue's 55 (a
temporary failure) instead of argparse's 2, which qmail clients read as a
permanent one.  :func:`register` only adds the command to ``mailwarden --help``.

SECURITY: runs as the client's user; see ``mailwarden.intercept.qmail``.
"""

from __future__ import annotations

import argparse
import logging
import textwrap
from collections.abc import Sequence

DESCRIPTION = textwrap.dedent(
    """\
    A drop-in for qmail-queue(8). Reads the message on descriptor 0 and the
    envelope on descriptor 1 exactly as qmail-queue does, asks the daemon for a
    verdict and applies the policy. When the policy lets the message pass, the
    real qmail-queue runs with the (tagged) message and the same envelope, and
    its exit status is the answer. Otherwise the exit status is one of
    qmail-queue's documented codes.

    Run it through QMAILQUEUE (netqmail, notqmail): QMAILQUEUE takes a path
    without arguments, so point it at a two-line script that runs
    `mailwarden qmail-queue` with its flags; or rename the original
    qmail-queue and put such a script in its place. Logs go to syslog (mail).
    """
)

EPILOG = textwrap.dedent(
    """\
    exit status (qmail-queue(8); qmail-smtpd's reply in brackets):
      real qmail-queue's  the policy let it pass (accept, tag)
      0                   quarantined or discarded by the policy [250]
      31                  rejected by the policy [554 5.3.0]
      71                  deferred, daemon unreachable or too slow [451 4.3.0]
      54                  the message could not be read [451 4.3.0]
      55                  bad command line or configuration [451 4.3.0]
      81                  the real qmail-queue cannot be run, loop, internal
                          error [451 4.3.0]
      91                  malformed or truncated envelope [451 4.3.0]

    example (docs/qmail.md has the whole recipe):
      /var/qmail/bin/qmail-scan-queue:
        #!/bin/sh
        exec /usr/bin/mailwarden qmail-queue --qmail-queue /var/qmail/bin/qmail-queue
      tcpserver ... env QMAILQUEUE=/var/qmail/bin/qmail-scan-queue qmail-smtpd
    """
)

#: qmail-queue(8): "unable to read a configuration file" (temporary)
_USAGE = 55


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c", "--config", metavar="FILE", help="configuration file (default: as every command)"
    )
    parser.add_argument(
        "--daemon-socket",
        metavar="PATH",
        help="the daemon's unix socket ([qmail] daemon_socket, else [daemon] socket)",
    )
    parser.add_argument(
        "--qmail-queue",
        metavar="PATH",
        help="the real qmail-queue ([qmail] qmail_queue, /var/qmail/bin/qmail-queue)",
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "qmail-queue",
        help="qmail-queue wrapper: scan, then run the real qmail-queue (QMAILQUEUE)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Reached only through the full parser (``main`` takes the direct path)."""
    return _queue(args)


def main(argv: Sequence[str]) -> int:
    """``mailwarden qmail-queue ARGV``; see the module documentation."""
    from mailwarden.cli.mda_cmd import Parser, UsageError

    parser = Parser(
        prog="mailwarden qmail-queue",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_arguments(parser)
    try:
        args = parser.parse_args(list(argv))
    except UsageError as exc:
        _route_logs()
        logging.getLogger("mailwarden.intercept.qmail").error("usage: %s", exc)
        return _USAGE
    return _queue(args)


def _queue(args: argparse.Namespace) -> int:
    from mailwarden.intercept.qmail import QueueRequest, run_qmail_queue

    _route_logs()
    request = QueueRequest(
        config=args.config, daemon_socket=args.daemon_socket, qmail_queue=args.qmail_queue
    )
    return run_qmail_queue(request)


def _route_logs() -> None:
    # descriptor 1 carries the envelope: nothing may be printed; logs go to syslog
    from mailwarden.intercept.mda import route_logs

    route_logs("mailwarden-qmail-queue")
