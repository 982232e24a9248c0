"""``mailwarden pipe``: a filter for procmail, maildrop and Sieve ``extprograms``.

Like ``mda`` it is started once per message, so :func:`main` is reached
straight from ``mailwarden.cli.main`` and a bad command line exits with a
sysexits code; :func:`register` only adds it to ``mailwarden --help``.  It
goes through the resident agent as ``mda`` does (``mailwarden.cli.mda_cmd``).

SECURITY: runs as the MDA runs (usually the recipient); see
``mailwarden.intercept.mda``.  Standard output carries only the message.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence

from mailwarden.cli.mda_cmd import add_arguments, note_unreachable, parse, request_of, through_agent

DESCRIPTION = textwrap.dedent(
    """\
    Filter one message: read it on standard input, ask the daemon, apply the
    inbound policy, and write the accepted message (with the X-Virus headers,
    tagged when the policy says so) to standard output. The decision is in
    the exit status, so a procmail, maildrop or Sieve recipe can act on it.
    Nothing is written to standard output unless the exit status is 0.
    Like mda, it hands the message to the resident mda agent when one answers
    on [mda] agent_socket ([mda] agent says what happens otherwise).
    """
)

EPILOG = textwrap.dedent(
    """\
    exit status ([mda] section; every code is configurable):
      0               deliver what is on standard output (accepted or tagged)
      1               quarantined (pipe_exit_quarantine)
      2               discarded by the policy (pipe_exit_discard)
      77 EX_NOPERM    rejected: bounce it (exit_reject)
      75 EX_TEMPFAIL  deferred, daemon unreachable, any internal error
                      (exit_tempfail, exit_usage): let the MTA retry

    procmail (docs/mda.md has the whole recipe, maildrop and Sieve):
      :0 fw
      | /usr/bin/mailwarden pipe --recipient "$LOGNAME@example.org"
      :0 e
      { MAILWARDEN=$? }
      then: 1 or 2 -> /dev/null, 77 -> EXITCODE=77, others -> EXITCODE=75
    """
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "pipe",
        help="filter for procmail/maildrop/Sieve: message in, accepted message out",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Reached only through the full parser (``main`` takes the direct path)."""
    args.command = ()
    return filter_message(args)


def main(argv: Sequence[str]) -> int:
    """``mailwarden pipe ARGV``: parse, then filter; see the module documentation."""
    parsed = parse("pipe", argv, DESCRIPTION, EPILOG, takes_command=False)
    return parsed if isinstance(parsed, int) else filter_message(parsed)


def filter_message(args: argparse.Namespace) -> int:
    """Through the agent when it answers, else in this process."""
    code, unreachable = through_agent("pipe", args)
    if code is not None:
        return code
    from mailwarden.intercept.mda import route_logs, run_pipe

    route_logs("mailwarden-pipe")
    note_unreachable(unreachable)
    return run_pipe(request_of(args), sys.stdin.buffer, sys.stdout.buffer)
