"""``mailwarden daemon``: load the signature database once and serve it over a socket.

Flags override the ``[daemon]`` section for the common settings; the
database flags mean what they mean for ``mailwarden scan``.

SECURITY: started as root it binds its sockets and writes its pid file,
then becomes ``[serve] user`` (``privileges.drop_root``) before the loader
and the workers exist; an unknown user stops it first.  It needs to read the
signature files and write the signature cache.  See ``mailwarden.daemon.server``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import logging.handlers
import os
import sys
import textwrap
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mailwarden.cli.common import (
    add_config_option,
    add_database_options,
    config_from_args,
    engine_settings,
)
from mailwarden.errors import ConfigError

if TYPE_CHECKING:
    from mailwarden.daemon.settings import DaemonSettings

DESCRIPTION = textwrap.dedent(
    """\
    Run the scanning daemon: load the signature database once, fork worker
    processes that share it, and answer on a unix socket (and on TCP when
    configured) in the clamd protocol, so clamdscan, Exim's malware
    condition, amavis, rspamd and clamav-milter can use it, plus MAILSCAN,
    which returns mailwarden's whole verdict as JSON.

    Commands: PING, VERSION, VERSIONCOMMANDS, RELOAD, SHUTDOWN, SCAN,
    CONTSCAN, MULTISCAN, ALLMATCHSCAN, INSTREAM, FILDES, STATS, IDSESSION/END,
    each with the z (NUL) or n (newline) prefix, and MAILSCAN.

    SIGHUP or RELOAD loads the database again beside the serving one and
    switches over when it is ready; a database that fails to load leaves the
    old one serving (the reason is logged and shown by STATS). SIGTERM or
    SHUTDOWN stops the daemon after the requests it is running.
    """
)

EPILOG = textwrap.dedent(
    """\
    examples:
      mailwarden daemon --foreground
      mailwarden daemon --foreground --socket /tmp/mw.sock --tcp 127.0.0.1:3310 -d sigs/
      clamdscan --config-file=clamd.conf --stream message.eml   # LocalSocket = our socket

    exit status: 0 after a clean shutdown, 2 when it cannot start (bad
    configuration, unreadable database, socket in use).
    """
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "daemon",
        help="serve the signature database over the clamd protocol",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_option(parser)
    add_database_options(parser)
    parser.add_argument(
        "--foreground",
        action="store_true",
        help="stay attached to the terminal and log to standard error (for systemd)",
    )
    parser.add_argument("--socket", metavar="PATH", help="unix socket ([daemon] socket)")
    parser.add_argument(
        "--socket-group",
        metavar="GROUP",
        help="group of the unix socket, '' for the daemon's own ([daemon] socket_group)",
    )
    parser.add_argument(
        "--tcp", metavar="HOST:PORT", help="also listen on TCP, e.g. 127.0.0.1:3310 ([daemon] tcp)"
    )
    parser.add_argument(
        "--workers", type=int, metavar="N", help="worker processes, 0 = one per core"
    )
    parser.add_argument("--pid-file", metavar="PATH", help="pid file ([daemon] pid_file)")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log every reload and start-up detail"
    )
    parser.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace) -> DaemonSettings:
    """The daemon's settings: configuration, then flags."""
    from mailwarden.daemon.settings import DaemonSettings, parse_host_port

    config = config_from_args(args)
    settings = DaemonSettings.from_config(config, engine=engine_settings(args, config))
    changes: dict[str, Any] = {}
    if args.socket is not None:
        changes["socket"] = args.socket
    if args.socket_group is not None:
        changes["socket_group"] = args.socket_group
    if args.tcp is not None:
        try:
            changes["tcp"] = parse_host_port(args.tcp) if args.tcp else None
        except ValueError as exc:
            raise ConfigError(str(exc), key="--tcp") from exc
    if args.workers is not None:
        if args.workers < 0:
            raise ConfigError("must be 0 or more", key="--workers")
        changes["workers"] = args.workers
    if args.pid_file is not None:
        changes["pid_file"] = args.pid_file
    return dataclasses.replace(settings, **changes)


def run(args: argparse.Namespace) -> int:
    from mailwarden.daemon import server
    from mailwarden.privileges import drop_root, service_identity

    settings = settings_from_args(args)
    _setup_logging(foreground=args.foreground, verbose=args.verbose)
    target = service_identity(config_from_args(args))

    def listening() -> None:
        drop_root(target, own=(settings.socket, settings.pid_file))

    ready = None if args.foreground else _detach()
    return server.run(settings, on_ready=ready, on_listening=listening)


def _setup_logging(*, foreground: bool, verbose: bool) -> None:
    handler: logging.Handler
    if foreground or not os.path.exists("/dev/log"):
        # journald stamps each line itself
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("mailwarden-daemon: %(levelname)s %(message)s"))
    else:
        handler = logging.handlers.SysLogHandler(
            "/dev/log", facility=logging.handlers.SysLogHandler.LOG_MAIL
        )
        handler.setFormatter(logging.Formatter("mailwarden-daemon[%(process)d]: %(message)s"))
    logger = logging.getLogger("mailwarden")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)


def _detach() -> Callable[[], None]:
    """Leave the terminal and the session; the caller's process exits once the
    daemon is serving (0) or has failed to start (2), so init scripts see the outcome.

    Returns the callback the server calls when it listens.
    """
    read_end, write_end = os.pipe()
    if os.fork():
        os.close(write_end)
        with os.fdopen(read_end, "rb") as status:
            os._exit(0 if status.read(1) == b"1" else 2)
    os.close(read_end)
    os.setsid()
    if os.fork():
        os._exit(0)
    os.chdir("/")

    def ready() -> None:
        os.write(write_end, b"1")
        os.close(write_end)
        # start-up errors went to the terminal; from here on, the log
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)

    return ready
