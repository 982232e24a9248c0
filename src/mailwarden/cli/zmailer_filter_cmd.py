"""``mailwarden zmailer-filter``: the content filter program of ZMailer's smtpserver.

smtpserver starts it once, without arguments (a wrapper script adds any
flags), and talks to it on its standard input and output; see
``mailwarden.intercept.zmailer``.

SECURITY: runs as smtpserver's user, and unlike the resident agents does not
become ``[serve] user``: it rewrites the message files in ZMailer's spool,
which needs smtpserver's rights.  Standard error is the same pipe as
the answers, so it is pointed at /dev/null once the command line is read;
logs go to syslog.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import textwrap

DESCRIPTION = textwrap.dedent(
    """\
    The content filter of ZMailer's smtpserver (PARAM contentfilter in
    smtpserver.conf). smtpserver starts it once and keeps it: it says
    "#hungry", reads the path of a received message file, asks the daemon for
    a verdict, applies the policy and answers with one line:

      0 250 2.6.0 Ok              accept or tag (the file gets our headers first)
      -1 250 2.7.0 Ok: ...        quarantined or discarded: the file is dropped
      -1 554 5.7.1 Infected: ...  rejected
      -1 451 4.7.1 ...            deferred, daemon unreachable, missing file,
                                  any failure: the client retries

    It exits when smtpserver closes its standard input. Logs go to syslog.
    """
)

EPILOG = textwrap.dedent(
    """\
    example (docs/zmailer.md has the recipe):
      smtpserver.conf:   PARAM contentfilter /usr/local/libexec/mailwarden-zmailer
      that script:       #!/bin/sh
                         exec /usr/bin/mailwarden zmailer-filter -c /etc/mailwarden/mailwarden.toml
    """
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "zmailer-filter",
        help="ZMailer smtpserver content filter (PARAM contentfilter)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-c", "--config", metavar="FILE", help="configuration file (default: as every command)"
    )
    parser.add_argument(
        "--daemon-socket",
        metavar="PATH",
        help="the daemon's unix socket ([zmailer] daemon_socket, else [daemon] socket)",
    )
    parser.add_argument(
        "--postoffice",
        metavar="DIR",
        help="folder relative message paths start from ([zmailer] postoffice; default: "
        "the current folder, $POSTOFFICE when smtpserver starts the filter)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from mailwarden.config import load_config
    from mailwarden.errors import MailwardenError
    from mailwarden.intercept import zmailer
    from mailwarden.intercept.mda import route_logs

    route_logs("mailwarden-zmailer")
    _quiet_stderr()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    try:
        config = load_config(args.config)
        settings = zmailer.ZmailerSettings.from_config(config, daemon_socket=args.daemon_socket)
    except MailwardenError as exc:
        return zmailer.refuse_all(stdin, stdout, str(exc))
    if args.postoffice:
        settings = replace(settings, postoffice=args.postoffice)
    return asyncio.run(zmailer.serve(config, settings, stdin, stdout))


def _quiet_stderr() -> None:
    # smtpserver reads our stderr as answers: a stray warning must not reach it
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
