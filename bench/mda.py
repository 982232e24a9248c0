"""MDA benchmark: one delivery through `mailwarden mda -- procmail` against procmail alone.

Usage (from the repository root)::

    .venv/bin/python bench/mda.py                   # 1,000 deliveries of each
    .venv/bin/python bench/mda.py --deliveries 200  # quicker
    .venv/bin/python bench/mda.py --write           # also replace the MDA section in BENCHMARKS.md

What an MTA pays per local delivery: it starts a command and waits for its
exit status.  The benchmark starts ``mailwarden daemon`` (bundled signatures,
one worker), then runs, alternately so that both see the same machine load:

* ``procmail``: ``procmail DEFAULT=MAILDIR/`` with a 4 KB clean message on
  its standard input, the way Postfix's mailbox_command runs it;
* ``mailwarden mda``: the installed ``mailwarden`` console script with
  ``mda --sender ... --recipient ... -- procmail DEFAULT=MAILDIR/``: process
  start, imports, configuration, the daemon round trip (MAILSCAN), policy,
  headers, one history row in the SQLite store, and the exec of procmail.

It reports p50/p99/mean wall time of each and the added cost (the
difference of the percentiles), their CPU time (user + system of the
command, the daemon's excluded), the import time of the mda path
(``python -X importtime``), and the load average before and after: on a busy
machine the figures are the machine's, not the program's.

SECURITY: everything runs in a private temporary folder; the daemon listens
on a unix socket there and is stopped by its PID.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from intercept.harness import Stack  # noqa: E402

MARK = "bench/mda.py"
MAILWARDEN = Path(sys.executable).with_name("mailwarden")


def message() -> bytes:
    head = (
        b"From: Sender <sender@remote.example>\nTo: user@mda.example\n"
        b"Subject: quarterly figures\nMessage-ID: <bench@client.example>\n"
        b"MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n"
    )
    line = b"The figures for the quarter are attached below, as discussed on Monday.\n"
    return head + line * 55  # about 4 KB


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def timed(argv: list[str], data: bytes) -> tuple[float, float]:
    """Wall time, and CPU time of the command (user + system, the daemon's excluded)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, input=data, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def import_ms(config: Path) -> float:
    """Cumulative import time of the modules the mda path loads, in ms."""
    code = (
        "import sys; sys.argv = ['mailwarden']; import mailwarden.cli, mailwarden.cli.mda_cmd;"
        " import mailwarden.intercept.mda"
    )
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    )
    total = 0
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            total += int(line.split("|")[0].split(":")[1])
    return total / 1000


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 0.50) * 1000, 2),
        "p99_ms": round(percentile(values, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(values) * 1000, 2),
    }


def run(deliveries: int) -> dict[str, Any]:
    procmail = shutil.which("procmail")
    if procmail is None:
        raise SystemExit("procmail is not installed (scripts/bootstrap installs it)")
    root = Path(tempfile.mkdtemp(prefix="mwbench-mda-"))
    stack = Stack.create(root / "mw")
    maildir = root / "Maildir"
    mda = [procmail, f"DEFAULT={maildir}/"]
    wrapped = [
        str(MAILWARDEN),
        "mda",
        "-c",
        str(stack.config),
        "--sender",
        "sender@remote.example",
        "--recipient",
        "user@mda.example",
        "--",
        *mda,
    ]
    data = message()
    load_before = os.getloadavg()
    try:
        stack.start_daemon()
        for _ in range(10):  # warm the page cache and the store
            timed(wrapped, data)
            timed(mda, data)
        alone: list[tuple[float, float]] = []
        through: list[tuple[float, float]] = []
        for _ in range(deliveries):
            alone.append(timed(mda, data))
            through.append(timed(wrapped, data))
        imports = min(import_ms(stack.config) for _ in range(5))
    finally:
        stack.stop_all()
        load_after = os.getloadavg()
        shutil.rmtree(root, ignore_errors=True)
    a, t = summary([w for w, _ in alone]), summary([w for w, _ in through])
    a_cpu, t_cpu = summary([c for _, c in alone]), summary([c for _, c in through])
    return {
        "bench": "mda",
        "deliveries": deliveries,
        "message_bytes": len(data),
        "procmail": a,
        "mailwarden_mda": t,
        "added_p50_ms": round(t["p50_ms"] - a["p50_ms"], 2),
        "added_p99_ms": round(t["p99_ms"] - a["p99_ms"], 2),
        "procmail_cpu": a_cpu,
        "mailwarden_mda_cpu": t_cpu,
        "imports_ms": round(imports, 1),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def section(result: dict[str, Any]) -> str:
    a, t = result["procmail"], result["mailwarden_mda"]
    ac, tc = result["procmail_cpu"], result["mailwarden_mda_cpu"]
    out = [
        f"<!-- {MARK} -->",
        "## MDA: one delivery through `mailwarden mda` against the MDA alone",
        "",
        f"{result['deliveries']:,} deliveries of a {result['message_bytes']:,}-byte clean "
        "message, alternating; procmail into a Maildir; `mailwarden daemon` with the bundled "
        "signatures and one worker; the history row written to SQLite each time. "
        f"Python {result['python']}, {result['cpus']} cores, load average "
        f"{result['load_before'][0]} before and {result['load_after'][0]} after.",
        "",
        "| | p50 | p99 | mean |",
        "| --- | ---: | ---: | ---: |",
        f"| procmail alone | {a['p50_ms']} ms | {a['p99_ms']} ms | {a['mean_ms']} ms |",
        f"| `mailwarden mda -- procmail` | {t['p50_ms']} ms | {t['p99_ms']} ms "
        f"| {t['mean_ms']} ms |",
        f"| added by mailwarden | {result['added_p50_ms']} ms | {result['added_p99_ms']} ms "
        f"| {round(t['mean_ms'] - a['mean_ms'], 2)} ms |",
        f"| CPU time, procmail alone | {ac['p50_ms']} ms | {ac['p99_ms']} ms "
        f"| {ac['mean_ms']} ms |",
        f"| CPU time, through mailwarden | {tc['p50_ms']} ms | {tc['p99_ms']} ms "
        f"| {tc['mean_ms']} ms |",
        "",
        "Wall time is what the MTA waits; CPU time (user + system of the command and what "
        "it execs, not the daemon's) moves less with the machine's load.",
        "",
        f"Imports of the mda path (`python -X importtime`, best of 5): "
        f"{result['imports_ms']} ms. Target: under 60 ms added at p99.",
        "",
        "```sh",
        f".venv/bin/python bench/mda.py --deliveries {result['deliveries']} --write",
        "```",
        f"<!-- end {MARK} -->",
    ]
    return "\n".join(out) + "\n"


def write_section(text: str) -> None:
    path = REPO / "BENCHMARKS.md"
    body = path.read_text() if path.exists() else "# Benchmarks\n"
    start, end = f"<!-- {MARK} -->", f"<!-- end {MARK} -->"
    if start in body and end in body:
        head, rest = body.split(start, 1)
        _, tail = rest.split(end, 1)
        body = head + text.rstrip("\n") + tail
    else:
        body = body.rstrip("\n") + "\n\n" + text
    path.write_text(body)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--deliveries", type=int, default=1000)
    ap.add_argument("--write", action="store_true", help="replace the MDA section in BENCHMARKS.md")
    args = ap.parse_args()
    result = run(args.deliveries)
    print(json.dumps(result))
    text = section(result)
    print(text)
    if args.write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
