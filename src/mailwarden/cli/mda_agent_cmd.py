"""``mailwarden mda-agent``: the resident half of ``mailwarden mda`` and ``mailwarden pipe``.

Flags override the ``[mda]`` section: ``--socket`` (``agent_socket``),
``--daemon-socket``, ``-c``.  ``mailwarden serve`` starts it when
``[serve] agents`` names ``mda-agent``.

SECURITY: see ``mailwarden.intercept.mda.server``; the command needs no
privileges beyond creating its socket and writing the store.  Run it as the
user that owns the store (serve's ``[serve] user``).
"""

from __future__ import annotations

import argparse
import textwrap

from mailwarden.cli.common import add_config_option

DESCRIPTION = textwrap.dedent(
    """\
    Run the mda agent. `mailwarden mda` and `mailwarden pipe`, which the MTA
    starts once per delivery, hand it each message over a unix socket
    ([mda] agent_socket) instead of loading the scanning pipeline themselves:
    the agent asks the daemon, applies the inbound policy, writes the
    quarantine and the history, and answers with the exit status and the
    copy to deliver. A delivery then costs a process start and one round
    trip, and the store belongs to the agent's user rather than to every
    delivering user.

    When the agent is not running, `mda` and `pipe` scan in their own process
    ([mda] agent = "auto"), or answer 75 so the MTA retries ("require").
    """
)

EPILOG = textwrap.dedent(
    """\
    examples:
      mailwarden mda-agent
      mailwarden mda-agent --socket /run/mailwarden/mda.sock

    The delivering users (the recipients for Postfix's mailbox_command, the
    pipe transport's user otherwise) must be able to connect: [mda]
    agent_socket_mode and agent_socket_group; docs/mda.md explains which
    group each MTA gives its delivery commands.
    exit status: 0 after SIGTERM/SIGINT, 2 on a configuration error or when
    the socket cannot be opened.
    """
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "mda-agent",
        help="resident agent that runs the pipeline for `mda` and `pipe`",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_option(parser)
    parser.add_argument(
        "--socket", metavar="PATH", help="the unix socket to listen on ([mda] agent_socket)"
    )
    parser.add_argument(
        "--daemon-socket",
        metavar="PATH",
        help="the scanning daemon's unix socket ([mda] daemon_socket, else [daemon] socket)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mailwarden.cli.common import config_from_args
    from mailwarden.cli.smtp_filter_cmd import setup_logging
    from mailwarden.intercept.mda.server import run_agent
    from mailwarden.intercept.mda.settings import AgentSettings

    config = config_from_args(args)
    settings = AgentSettings.from_config(
        config, socket=args.socket, daemon_socket=args.daemon_socket
    )
    setup_logging("mda-agent", verbose=args.verbose)
    return run_agent(settings, config)
