"""``mailwarden mda``: scan each message on its way from the MTA to the original MDA.

The MTA runs this once per delivery, so :func:`main` is reached straight from
``mailwarden.cli.main`` without loading the other subcommands, and a bad
command line is answered with a sysexits code (``[mda] exit_usage``, 75 by
default) instead of argparse's 2, which MTAs read as a permanent failure.
:func:`register` only adds the command to ``mailwarden --help``.

When the resident agent (``mailwarden mda-agent``) answers on ``[mda]
agent_socket``, :func:`deliver` hands it the message through
``mailwarden.cli.mda_client``, which imports nothing beyond the standard
library; otherwise (``[mda] agent = "auto"``) it runs the pipeline in this
process (``mailwarden.intercept.mda``), which is correct but pays for
importing it on every delivery.

SECURITY: runs with the identity the MTA chose; see
``mailwarden.intercept.mda``.  The original MDA's command line comes from
the MTA's configuration and is executed without a shell.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence

TYPE_CHECKING = False  # typing itself costs milliseconds on every delivery
if TYPE_CHECKING:
    from mailwarden.intercept.mda import Request

DESCRIPTION = textwrap.dedent(
    """\
    Run by the MTA as its local delivery agent. Reads the message on standard
    input, asks the daemon for a verdict and applies the inbound policy for the
    recipient. When the policy delivers, the original MDA given after -- runs
    with the message (tagged when the policy says so) on its standard input,
    and its exit status is the MTA's answer. Otherwise the exit status says
    what happened, as sysexits(3) codes the MTA understands; a reason for a
    bounce or a retry goes to standard error as one line starting with an
    enhanced status code (5.7.1 ..., 4.7.1 ...).

    An mbox "From " line in front of the message (Postfix local and pipe with
    flags=F, Exim's pipe transport) is passed on to the MDA but not scanned.

    The scanning is done by the resident mda agent (mailwarden mda-agent) when
    it answers on [mda] agent_socket: this command then only passes it the
    message. Otherwise ([mda] agent = "auto") it scans in its own process,
    which costs far more per delivery; with agent = "require" it exits 75.
    --daemon-socket always scans in this process.
    """
)

EPILOG = textwrap.dedent(
    """\
    exit status ([mda] section; every code is configurable):
      MDA's own       the policy delivered; the original MDA ran
      0               quarantined (exit_quarantine) or discarded (exit_discard)
      77 EX_NOPERM    rejected: the MTA bounces (exit_reject)
      75 EX_TEMPFAIL  deferred, daemon unreachable or too slow, any internal
                      error, a bad command line or configuration, an MDA that
                      cannot be run, the mda agent failing or (with agent =
                      "require") not running (exit_tempfail, exit_usage): the
                      MTA keeps the mail and retries

    examples (docs/mda.md has each MTA's recipe):
      Postfix main.cf:
        mailbox_command = /usr/bin/mailwarden mda --sender "$SENDER"
          --recipient "$RECIPIENT" -- /usr/bin/procmail -a "$EXTENSION"
      Exim pipe transport:
        command = /usr/bin/mailwarden mda --sender $sender_address
          --recipient $local_part@$domain -- /usr/lib/dovecot/dovecot-lda
          -f $sender_address -d $local_part@$domain
    """
)

COMMAND_HELP = "the original MDA and its arguments, after --"


class UsageError(Exception):
    """The command line is wrong."""


class Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` instead of exiting with status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags ``mda`` and ``pipe`` share."""
    parser.add_argument(
        "-c", "--config", metavar="FILE", help="configuration file (default: as every command)"
    )
    parser.add_argument(
        "--daemon-socket",
        metavar="PATH",
        help="the daemon's unix socket ([mda] daemon_socket, else [daemon] socket)",
    )
    parser.add_argument(
        "--sender",
        "-f",
        metavar="ADDR",
        default="",
        help="envelope sender (Postfix $SENDER or ${sender}, Sendmail $f, Exim "
        "$sender_address); empty for a bounce",
    )
    parser.add_argument(
        "--recipient",
        "-r",
        metavar="ADDR",
        action="append",
        default=[],
        help="envelope recipient; repeatable (Postfix $RECIPIENT or ${recipient}, "
        "Sendmail $u@$j, Exim $local_part@$domain)",
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "mda",
        help="local delivery wrapper: scan, then run the original MDA (sysexits codes)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.add_argument("command", nargs="*", metavar="-- MDA [ARGS]", help=COMMAND_HELP)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Reached only through the full parser (``main`` takes the direct path)."""
    if not args.command:
        return usage_failure("mda", [], "no original MDA after --")
    args.command = tuple(args.command)
    return deliver(args)


def main(argv: Sequence[str]) -> int:
    """``mailwarden mda ARGV``: parse, then deliver; see the module documentation."""
    parsed = parse("mda", argv, DESCRIPTION, EPILOG, takes_command=True)
    return parsed if isinstance(parsed, int) else deliver(parsed)


def deliver(args: argparse.Namespace) -> int:
    """Through the agent when it answers, else in this process."""
    code, unreachable = through_agent("mda", args)
    if code is not None:
        return code
    from mailwarden.intercept.mda import route_logs, run_mda

    route_logs("mailwarden-mda")
    note_unreachable(unreachable)
    return run_mda(request_of(args), sys.stdin.buffer)


def through_agent(verb: str, args: argparse.Namespace) -> tuple[int | None, str]:
    """The exit status of a delivery through the agent, or None to run it in this process
    (with the agent's socket when it did not answer, for the log)."""
    from mailwarden.cli import mda_client

    if args.daemon_socket:  # a daemon was named: this process talks to it itself
        return None, ""
    return mda_client.attempt(verb, args.config, args.sender, args.recipient, args.command)


def note_unreachable(unreachable: str) -> None:
    if unreachable:
        import logging

        logging.getLogger("mailwarden.intercept.mda").warning(
            "the mda agent is not answering on %s: scanning in this process", unreachable
        )


def parse(
    name: str, argv: Sequence[str], description: str, epilog: str, *, takes_command: bool
) -> argparse.Namespace | int:
    """The parsed ``argv`` (the MDA's command line in ``command``), or the exit status after
    a usage error was reported."""
    argv = list(argv)
    options, command = split_command(argv)
    missing_dashes = "missing -- before the original MDA's command line"
    try:
        try:
            args = parser_for(name, description, epilog).parse_args(options)
        except UsageError as exc:
            # "unrecognized arguments: procmail -a" means the -- was forgotten
            problem = missing_dashes if takes_command and command is None else str(exc)
            raise UsageError(problem) from exc
        if takes_command and command is None:
            raise UsageError(missing_dashes)
        if takes_command and not command:
            raise UsageError("no original MDA after --")
        if not takes_command and command is not None:
            raise UsageError(f"{name} takes no command after --")
    except UsageError as exc:
        return usage_failure(name, argv, str(exc))
    args.command = tuple(command or ())
    return args


def request_of(args: argparse.Namespace) -> Request:
    from mailwarden.intercept.mda import Request

    return Request(
        sender=args.sender,
        recipients=tuple(args.recipient),
        config=args.config,
        daemon_socket=args.daemon_socket,
        command=tuple(getattr(args, "command", ())),
    )


def split_command(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """Options before ``--``, and the command after it (None without ``--``)."""
    if "--" not in argv:
        return argv, None
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1 :]


def parser_for(name: str, description: str, epilog: str) -> Parser:
    command = " -- MDA [ARGS...]" if name == "mda" else ""
    parser = Parser(
        prog=f"mailwarden {name}",
        usage=f"%(prog)s [-c FILE] [--daemon-socket PATH] [--sender ADDR] "
        f"[--recipient ADDR]...{command}",
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return parser


def usage_failure(name: str, argv: Sequence[str], problem: str) -> int:
    """Say what is wrong and exit with ``[mda] exit_usage`` (when the configuration loads)."""
    from mailwarden.intercept.mda import ExitCodes, say

    codes = ExitCodes()
    config_path = _config_option(argv)
    try:
        from mailwarden.config import load_config

        codes = ExitCodes.from_section(load_config(config_path)["mda"])
    except Exception:  # noqa: S110 - the defaults keep the mail; the usage error is reported
        pass
    say(codes.usage, "4.3.5", f"mailwarden {name}: usage: {problem}", temporary=codes.tempfail)
    return codes.usage


def _config_option(argv: Sequence[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg in ("-c", "--config") and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None
