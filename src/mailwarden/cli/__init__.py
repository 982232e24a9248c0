"""The ``mailwarden`` command: one program, one subcommand per job.

Each subcommand lives in its own module with a ``register(subparsers)`` that
adds its parser (with man-page-quality help) and a ``run(args) -> int``.
:func:`main` is the only place that turns exceptions into exit codes, except
for ``mda`` and ``pipe``: started by the MTA for every message, they get their
arguments directly and answer with sysexits codes themselves.

SECURITY: the CLI runs with the caller's rights; subcommands that need
privileges say so in their own modules.
"""

from __future__ import annotations

import sys
from importlib import import_module

from mailwarden import __version__
from mailwarden.errors import ConfigError, MailwardenError

TYPE_CHECKING = False  # typing, argparse and re cost milliseconds on every delivery
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

DESCRIPTION = """\
mailwarden: an antivirus gateway for Linux mail servers.

One engine (ClamAV signatures, YARA rules, heuristics; MIME and archives
decoded to the last part) and one policy, wherever mail moves through the
server. Run `mailwarden COMMAND --help` for each command's manual.
"""

EPILOG = """\
configuration: /etc/mailwarden/mailwarden.toml, then conf.d/*.toml beside it;
-c FILE or $MAILWARDEN_CONFIG name another file. `mailwarden config defaults`
prints every key with its default.
"""

# Subcommand modules, imported only when the full parser is built: each pulls
# in its own subsystem (the engine, aiosmtpd...), which a command started by
# the MTA for every delivery must not pay for.
_COMMANDS = (
    "scan",
    "db",
    "config_cmd",
    "daemon_cmd",
    "quarantine_cmd",
    "smtp_filter_cmd",
    "smtp_proxy_cmd",
    "milter_cmd",
    "pop3_proxy_cmd",
    "imap_proxy_cmd",
    "mda_cmd",
    "pipe_cmd",
    "mda_agent_cmd",
    "qmail_queue_cmd",
    "zmailer_filter_cmd",
    "serve_cmd",
    "setup_cmd",
    "update_cmd",
    "web_cmd",
    "metrics_cmd",
)

#: Commands the MTA runs once per message: ``main`` hands them their arguments
#: directly (no other subcommand is imported, and a usage error exits with
#: their sysexits code rather than argparse's 2, a permanent failure to an MTA).
_PER_MESSAGE = {"mda": "mda_cmd", "pipe": "pipe_cmd", "qmail-queue": "qmail_queue_cmd"}


def build_parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog="mailwarden",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mailwarden {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMANDS:
        import_module(f"mailwarden.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in ("mda", "pipe"):
        # the common case, through the resident agent, with the standard library only
        from mailwarden.cli.mda_client import fast_path

        fast = fast_path(args_list[0], args_list[1:])
        if fast is not None:
            return fast
    if args_list and args_list[0] in _PER_MESSAGE:
        # one message per process: per-process metrics files would pile up
        from mailwarden.metrics import record

        record.one_shot()
        module = import_module(f"mailwarden.cli.{_PER_MESSAGE[args_list[0]]}")
        per_message: int = module.main(args_list[1:])
        return per_message
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"mailwarden: configuration error: {exc}", file=sys.stderr)
        return 2
    except MailwardenError as exc:
        print(f"mailwarden: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
