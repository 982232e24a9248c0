"""``mailwarden metrics``: the Prometheus exporter on its own listener.

SECURITY: answers /metrics without a login (counts, the signature version
and the daemon's figures; no addresses or subjects), so it listens on
loopback by default.  Needs read access to [metrics] directory and the
daemon's socket only.
"""

from __future__ import annotations

import argparse
import textwrap

from mailwarden.cli.common import add_config_option, config_from_args, fail
from mailwarden.cli.smtp_filter_cmd import setup_logging

DESCRIPTION = textwrap.dedent(
    """\
    Serve /metrics for Prometheus when the web interface does not run (the
    web interface serves the same /metrics on its own listener, behind its
    login). Each scrape adds up what the agents counted in [metrics]
    directory (messages by interception point, agent, direction, verdict
    status and action; scan latency) and asks the daemon for its figures
    (database version, signatures, workers, queue depth, worker restarts).

    Listens on [metrics] listen (127.0.0.1:9425). Off in `mailwarden serve`
    unless "metrics" is in [serve] agents.

    exit status: 0 stopped by SIGTERM or SIGINT; 2 a configuration error or
    a listener that cannot be opened.
    """
)

EPILOG = textwrap.dedent(
    """\
    examples:
      mailwarden metrics
      curl -s http://127.0.0.1:9425/metrics | grep mailwarden_messages_total

    docs/metrics.md lists every metric and a Prometheus scrape configuration.
    """
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "metrics",
        help="serve /metrics for Prometheus on its own listener",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_option(parser)
    parser.add_argument(
        "--listen", metavar="HOST:PORT", help="where to listen instead of [metrics] listen"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging details")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mailwarden.web import run_exporter

    config = config_from_args(args)
    setup_logging("metrics", verbose=args.verbose)
    try:
        run_exporter(config, listen=args.listen)
    except OSError as exc:
        return fail(f"metrics: cannot listen: {exc}")
    return 0
