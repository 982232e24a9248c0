"""``mailwarden serve``: run the daemon and every enabled agent, like Postfix's master.

Loads and checks the configuration (an error names file, line and key and
stops serve before anything starts), prepares the runtime folders and drops
root when started as root, then hands over to ``mailwarden.serve.Supervisor``.
``--check`` stops after the checks and prints what would be started.

SECURITY: the only root work is creating missing runtime folders; the
privileges are dropped (``mailwarden.privileges``) before the first child
starts, so no child ever runs as root unless ``[serve] user`` is root.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import sys
import textwrap
from collections.abc import Callable, Coroutine
from typing import Any

from mailwarden.cli.common import add_config_option
from mailwarden.config import Config, config_files, load_config
from mailwarden.daemon.pidfile import running_daemon
from mailwarden.privileges import Identity, drop_privileges, must_drop

DESCRIPTION = textwrap.dedent(
    """\
    Run mailwarden: start the scanning daemon, then, once it answers PING,
    every agent that [serve] agents names, each as its own process
    (`mailwarden COMMAND -c CONFIG`) in its own process group, with its
    output passed through.

    A child that exits is started again after a delay that doubles with each
    exit in a row (restart_delay up to restart_delay_max, back to the start
    after stable_after seconds of running). A child that exits before it is
    ready start_failures times in a row is given up on, with an error line;
    the others keep serving, and serve exits 1 when none is left.

    Signals: SIGTERM or SIGINT stop the agents, then the daemon (each is
    killed if it is still running stop_timeout seconds later) and exit 0.
    SIGHUP makes the daemon reload its signature database and tries again any
    child that was given up on.

    Serve itself purges the quarantine and the history of what is older
    than [store] retention_days and event_retention_days, at start and then
    every [store] purge_interval seconds (0: never; use `mailwarden
    quarantine purge` from a timer).

    Started as root, serve creates the missing runtime folders for [serve]
    user and becomes that user before anything starts.
    """
)

EPILOG = textwrap.dedent(
    """\
    examples:
      mailwarden serve                        # /etc/mailwarden/mailwarden.toml
      mailwarden serve -c .run/mailwarden.toml
      mailwarden serve --check                # validate, print what would run

    exit status: 0 after SIGTERM or SIGINT (or --check with a good
    configuration), 1 when every child was given up on or a daemon already
    runs on the configured pid file or socket, 2 for a configuration error.
    """
)

log = logging.getLogger("mailwarden.serve")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "serve",
        help="run the daemon and the enabled agents, restarting them when they exit",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_option(parser)
    parser.add_argument(
        "--check",
        action="store_true",
        help="check the configuration, print what would be started and exit",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log the supervisor's debugging detail"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mailwarden.serve import ServeSettings, Supervisor, plan, prepare_folders, runs_as

    files = config_files(args.config)
    config = load_config(args.config)
    settings = ServeSettings.from_config(
        config, config_file=os.path.abspath(files[0]) if files else None
    )
    specs = plan(config, settings)
    target = runs_as(config, settings)
    if args.check:
        _print_plan(config, target, [(s.name, s.argv) for s in specs])
        return 0
    _setup_logging(verbose=args.verbose)
    holder = running_daemon(config["daemon"]["pid_file"], config["daemon"]["socket"])
    if holder:
        # children of a serve killed with SIGKILL end with it (parentdeath.py),
        # but a daemon still finishing its scans, or one started by hand,
        # must not get a second set of children beside it
        log.error(
            "%s: another serve or daemon is running on this configuration; stop it first", holder
        )
        return 1
    for line in prepare_folders(config, target):
        log.info("%s", line)
    if drop_privileges(target):
        log.info("running as %s (uid %d, gid %d)", target.user, target.uid, target.gid)
    return asyncio.run(Supervisor(settings, specs, chores=[_retention(config)]).run())


def _retention(config: Config) -> Callable[[], Coroutine[Any, Any, None]]:
    """The quarantine's periodic purge ([store] purge_interval)."""
    from mailwarden.store import open_store
    from mailwarden.store.retention import keep_purging

    return lambda: keep_purging(lambda: open_store(config), config["store"])


def _print_plan(
    config: Config, target: Identity, children: list[tuple[str, tuple[str, ...]]]
) -> None:
    sources = ", ".join(config.files) or "embedded defaults"
    print(f"configuration: {sources}")
    how = "after dropping root" if must_drop(target) else "as the current user"
    print(f"children run as: {target.user} (uid {target.uid}, gid {target.gid}) {how}")
    width = max(len(name) for name, _argv in children)
    for name, argv in children:
        print(f"{name + ':':<{width + 1}} {shlex.join(argv)}")


def _setup_logging(*, verbose: bool) -> None:
    # stderr in both cases: under systemd the journal stamps and keeps it
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("mailwarden-serve: %(levelname)s %(message)s"))
    # mailwarden.store: the retention chore that runs in serve's process
    for name in ("mailwarden.serve", "mailwarden.store"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if verbose else logging.INFO)
