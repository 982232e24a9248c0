"""``mailwarden db``: load the signature databases and report what was loaded.

``db info`` compiles (or fetches from the cache) exactly what the daemon and
``scan`` would load and prints, per database kind, how many signatures were
loaded and how many were skipped and why: nothing unsupported is dropped
silently.

SECURITY: reads signature files; writes the compiled cache into
``[engine] cache_dir`` when it is writable.
"""

from __future__ import annotations

import argparse
import json
import textwrap

from mailwarden.cli.common import (
    add_config_option,
    add_database_options,
    config_from_args,
    engine_settings,
)
from mailwarden.engine import Engine

DESCRIPTION = textwrap.dedent(
    """\
    Show the signature databases the engine loads.

      info   load the configured databases (plus --database, as for scan) and print
             the files read, signatures loaded per kind (hdb, hsb, mdb, msb, ndb,
             ldb, fp, sfp, ign2, yara, bundled), signatures skipped with the
             reason (for example EP-relative offsets or bytecode), the database
             version, the load time and whether the compiled cache was used.

    exit status: 0 loaded, 2 a database could not be loaded (the error names
    the file and line).
    """
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "db",
        help="show what the signature databases contain",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="db_action", metavar="ACTION", required=True)
    info = actions.add_parser(
        "info",
        help="load the databases and print counts",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_database_options(info)
    add_config_option(info)
    info.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    engine = Engine.load(engine_settings(args, config))
    report = engine.signatures.report
    counts = dict(report.counts)
    if engine.yara is not None:
        counts["yara"] = engine.yara.rule_count
    info = {
        "version": engine.version,
        "signatures": engine.signature_count,
        "files": list(report.files),
        "loaded": counts,
        "skipped": dict(report.skipped),
        "load_seconds": round(report.seconds, 3),
        "from_cache": report.from_cache,
        "digest": report.digest,
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"Database version: {info['version']}")
    print(f"Signatures:       {info['signatures']}")
    source = "cache" if report.from_cache else "compiled"
    print(f"Load time:        {info['load_seconds']} s ({source})")
    print("Files:")
    for f in report.files:
        print(f"  {f}")
    print("Loaded:")
    for kind, n in sorted(counts.items()):
        print(f"  {kind:<10} {n}")
    print("Skipped:" + ("" if report.skipped else " none"))
    for why, n in sorted(report.skipped.items()):
        print(f"  {n:>8}  {why}")
    return 0
