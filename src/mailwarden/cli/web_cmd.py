"""``mailwarden web``: the web interface; ``mailwarden web passwd``: its password hash.

SECURITY: the interface needs read and write access to the store, read
access to the release secret and the daemon's socket, and creates its
session key (0600) on first start; run it as the mailwarden user, never as
root.  ``passwd`` reads the password from the terminal without echo (or
from standard input with ``--stdin``) and prints only its salted scrypt
hash.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import textwrap

from mailwarden.cli.common import add_config_option, config_from_args, fail
from mailwarden.cli.smtp_filter_cmd import setup_logging

DESCRIPTION = textwrap.dedent(
    """\
    Serve the web interface: a dashboard of scanned, infected, suspicious and
    unscanned messages per hour and per day (by interception point and
    direction), the quarantine with search, preview, release and delete, the
    recent events, the daemon's status and the effective configuration
    (read-only), plus /metrics for Prometheus. Everything needs a login.

    Listens on [web] listen (127.0.0.1:8025); HTTPS when [web]
    tls_certificate and tls_key are set. It is off in `mailwarden serve`
    unless "web" is in [serve] agents.

    Set the password first:

      mailwarden web passwd      prints a hash for [web] password_hash

    exit status: 0 stopped by SIGTERM or SIGINT; 2 a configuration error
    (such as no password_hash) or a listener that cannot be opened.
    """
)

EPILOG = textwrap.dedent(
    """\
    examples:
      mailwarden web passwd
      mailwarden web -c /etc/mailwarden/mailwarden.toml
      mailwarden web --listen 127.0.0.1:8080
      ssh -L 8025:127.0.0.1:8025 gateway     (then browse http://127.0.0.1:8025)

    docs/web.md explains the pages, the login and TLS.
    """
)

#: shorter passwords are refused by ``passwd``
MIN_PASSWORD = 10


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "web",
        help="serve the web interface (dashboard, quarantine, status, /metrics)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "action",
        nargs="?",
        choices=["passwd"],
        help="passwd: ask for a password and print the hash for [web] password_hash",
    )
    add_config_option(parser)
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="where to listen instead of [web] listen ([::1]:8025 for IPv6)",
    )
    parser.add_argument(
        "--stdin",
        action="store_true",
        help="passwd: read the password from the first line of standard input",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging details")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "passwd":
        return passwd(args)
    from mailwarden.web import run_web

    config = config_from_args(args)
    setup_logging("web", verbose=args.verbose)
    try:
        run_web(config, listen=args.listen)
    except OSError as exc:
        return fail(f"web: cannot listen: {exc}")
    return 0


def passwd(args: argparse.Namespace) -> int:
    from mailwarden.web import hash_password

    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            return fail("web passwd: no terminal to ask on; use --stdin")
        password = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != password:
            return fail("web passwd: the two passwords differ")
    if len(password) < MIN_PASSWORD:
        return fail(f"web passwd: use at least {MIN_PASSWORD} characters")
    print(hash_password(password))
    print("put it in [web] password_hash, then restart mailwarden web", file=sys.stderr)
    return 0
