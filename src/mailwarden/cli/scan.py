"""``mailwarden scan``: scan messages, mailboxes and folders from the command line.

Output follows clamscan's conventions, one line per message, so existing
scripts and habits carry over; ``--json`` gives one JSON object per message.

SECURITY: runs with the caller's rights and reads only the named paths (see
``inputs.py``); it writes nothing but the signature cache.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from mailwarden.cli.common import (
    add_config_option,
    add_database_options,
    config_from_args,
    engine_settings,
)
from mailwarden.cli.inputs import Item, count_hint, is_mbox, iter_items
from mailwarden.engine import Engine, ScanPool
from mailwarden.verdict import Status, Verdict, display_name

EXIT_CLEAN, EXIT_FOUND, EXIT_TROUBLE = 0, 1, 2

DESCRIPTION = textwrap.dedent(
    """\
    Scan mail with mailwarden's engine, without a daemon.

    Each PATH is a message file (.eml), an mbox (split into its messages), a
    Maildir (cur/ and new/), any other folder (every file below it, symbolic
    links not followed), or - for one message on standard input. Every message
    is decoded to its last part: MIME at any depth, uuencode, TNEF, PDF streams,
    Office containers and archives (zip, tar, gzip, bzip2, xz, 7z, rar where a
    reader is installed) within the configured limits.

    Output: one line per message, as clamscan prints it,
      PATH: OK
      PATH: Eicar-Test-Signature FOUND
      PATH: Heuristics.DoubleExtension FOUND
      PATH: UNSCANNED (encrypted archive in 2/invoice.zip)
      PATH: ERROR (reason)
    then a summary. With --json, one JSON object per line instead:
      {"path", "status": "clean|infected|suspicious|unscanned|error",
       "findings": [{"name", "part", "engine", "category"}], "reason", "size"}
    where "part" locates the finding inside the message (2/invoice.zip/setup.exe).
    Messages of an mbox are named PATH[N], counting from 1.

    Signatures: the configured databases ([engine] databases, by default
    freshclam's folder when it exists) and the bundled set (EICAR and test
    signatures), plus every --database. --no-default-database keeps only the
    --database ones.
    """
)

EPILOG = textwrap.dedent(
    """\
    exit status:
      0  every message is clean
      1  at least one message is infected or suspicious
      2  nothing was found, but a message could not be scanned (unscanned or
         error), or the command itself failed (bad option, bad configuration,
         unreadable signatures)

    examples:
      mailwarden scan message.eml
      mailwarden scan --json ~/Maildir
      mailwarden scan --no-default-database -d /var/lib/clamav -d rules.yar mail.mbox
      mailwarden scan - < message.eml
    """
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "scan",
        help="scan messages, mboxes, Maildirs and folders",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="message, mbox, folder or -")
    parser.add_argument("--json", action="store_true", help="one JSON object per message")
    add_database_options(parser)
    add_config_option(parser)
    parser.add_argument(
        "-j",
        "--workers",
        type=int,
        metavar="N",
        help="worker processes (default: [engine] workers; 0 = one per CPU core)",
    )
    parser.add_argument(
        "-i", "--infected", action="store_true", help="print only messages that are not clean"
    )
    parser.add_argument("--no-summary", action="store_true", help="omit the summary")
    parser.add_argument(
        "--all-match", action="store_true", help="keep scanning after the first infection"
    )
    parser.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bar on standard error (auto: only on a terminal)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    settings = engine_settings(args, config)
    started = time.perf_counter()
    engine = Engine.load(settings)
    workers = args.workers if args.workers is not None else config["engine"]["workers"]
    stats = _Stats()
    out = sys.stdout
    items = iter_items(args.paths)
    show_progress = args.progress == "always" or (
        args.progress == "auto" and sys.stderr.isatty() and _is_bulk(args.paths)
    )
    with ScanPool(engine, workers=workers if _is_bulk(args.paths) else 1) as pool:
        results = pool.scan((item, item.job) for item in items)
        if show_progress:
            results = _with_progress(results, count_hint(args.paths))
        for item, verdict in results:
            stats.add(verdict)
            if args.infected and verdict.status is Status.CLEAN:
                continue
            _print(out, item, verdict, as_json=args.json)
    if not args.no_summary and not args.json:
        _summary(out, engine, stats, time.perf_counter() - started)
    if stats.infected or stats.suspicious:
        return EXIT_FOUND
    if stats.unscanned or stats.errors:
        return EXIT_TROUBLE
    return EXIT_CLEAN


class _Stats:
    def __init__(self) -> None:
        self.files = self.infected = self.suspicious = self.unscanned = self.errors = 0
        self.bytes = 0

    def add(self, verdict: Verdict) -> None:
        self.files += 1
        self.bytes += verdict.size
        if verdict.status is Status.INFECTED:
            self.infected += 1
        elif verdict.status is Status.SUSPICIOUS:
            self.suspicious += 1
        elif verdict.status is Status.UNSCANNED:
            self.unscanned += 1
        elif verdict.status is Status.ERROR:
            self.errors += 1


def _print(out: TextIO, item: Item, verdict: Verdict, *, as_json: bool) -> None:
    path = display_name(item.display, limit=4096)
    if as_json:
        record = {"path": path, **verdict.to_dict()}
        record.pop("timings", None)
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    if verdict.status in (Status.INFECTED, Status.SUSPICIOUS):
        line = f"{path}: {verdict.name} FOUND"
    elif verdict.status is Status.UNSCANNED:
        line = f"{path}: UNSCANNED ({verdict.reason})"
    elif verdict.status is Status.ERROR:
        line = f"{path}: ERROR ({verdict.reason})"
    else:
        line = f"{path}: OK"
    out.write(line + "\n")
    out.flush()


def _summary(out: TextIO, engine: Engine, stats: _Stats, seconds: float) -> None:
    out.write("\n----------- SCAN SUMMARY -----------\n")
    out.write(f"Known signatures: {engine.signature_count}\n")
    out.write(f"Database version: {engine.version}\n")
    out.write(f"Scanned messages: {stats.files}\n")
    out.write(f"Infected messages: {stats.infected}\n")
    out.write(f"Suspicious messages: {stats.suspicious}\n")
    out.write(f"Unscanned messages: {stats.unscanned}\n")
    out.write(f"Errors: {stats.errors}\n")
    out.write(f"Data scanned: {stats.bytes / 1e6:.2f} MB\n")
    out.write(f"Time: {seconds:.3f} sec\n")


def _is_bulk(paths: list[str]) -> bool:
    """Many messages: worth worker processes and a progress bar."""
    if len(paths) > 1:
        return True
    p = Path(paths[0])
    return p.is_dir() or (p.is_file() and is_mbox(p))


def _with_progress(
    results: Iterator[tuple[Item, Verdict]], total: int | None
) -> Iterator[tuple[Item, Verdict]]:
    # imported here: rich costs start-up time that single scans need not pay
    from rich.console import Console
    from rich.progress import Progress

    with Progress(transient=True, console=Console(stderr=True)) as progress:
        task = progress.add_task("scanning", total=total)
        for result in results:
            progress.advance(task)
            yield result
