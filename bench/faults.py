"""Fault injection under load: run bench/soak.py once per fault and print the table.

Usage (from the repository root, as root)::

    .venv/bin/python bench/faults.py                          # every fault, 200 sessions, 5 min
    .venv/bin/python bench/faults.py --sessions 20 --minutes 1 --faults kill-daemon kill-agent

Each fault is injected ``--fault-at`` seconds into its own soak run (see
bench/soak.py for what each does); the process killed or the resource taken
comes back after ``--fault-downtime`` seconds.  For each run the table gives
the messages Postfix accepted, how many were delivered and quarantined, lost
(must be 0), duplicated (must be 0), the messages delivered more than 30 s after Postfix
accepted them and the p99 and maximum of that wait (the delay a fault causes:
deferred mail waits for Postfix's next queue run), and the time from the
fault to the first delivery after it (recovery).  Rows are printed as Markdown for
docs/reliability.md, with the load average at the end of each run.

SECURITY: as bench/soak.py: loopback and private folders only, processes
stopped by PID, a tmpfs mounted only for ``quarantine-full`` and unmounted after.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FAULTS = [
    "kill-daemon",
    "kill-worker",
    "kill-agent",
    "kill-serve",
    "postgres-stopped",
    "scan-timeout",
    "quarantine-full",
]
HEADER = (
    "| fault | agent | sessions | minutes | accepted | delivered | quarantined | lost "
    "| duplicated | wrong | delayed > 30 s | delivery p99 / max (s) "
    "| first delivery after the fault (s) | load |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def run_one(fault: str, args: argparse.Namespace) -> dict[str, object]:
    command = [
        sys.executable,
        str(HERE / "soak.py"),
        *("--fault", fault, "--agent", args.agent),
        *("--sessions", str(args.sessions), "--minutes", str(args.minutes)),
        *("--fault-at", str(args.fault_at), "--fault-downtime", str(args.fault_downtime)),
        *("--drain-minutes", str(args.drain_minutes)),
        # serve can only be killed when it runs the daemon and the filter
        *(["--supervised"] if fault == "kill-serve" else []),
        *(["--store", "postgresql"] if fault == "postgres-stopped" else []),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            report: dict[str, object] = json.loads(line)
            return report
    return {"fault": fault, "error": (done.stderr or done.stdout)[-2000:]}


def row(report: dict[str, object], args: argparse.Namespace) -> str:
    if "error" in report:
        return f"| {report['fault']} | {args.agent} | failed to run: see stderr |" + " |" * 11
    load = report["load_average"][0]  # type: ignore[index]
    cells = [
        report["fault"],
        report["agent"],
        report["sessions"],
        report["minutes"],
        report["accepted"],
        report["delivered"],
        report["quarantined"],
        report["lost"],
        report["duplicated"],
        report["wrong"],
        report["delayed_over_30s"],
        "{p99} / {max}".format(**report["delivery_s"]),  # type: ignore[arg-type]
        report["first_delivery_after_fault_s"],
        load,
    ]
    return "| " + " | ".join(str(c) for c in cells) + " |"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--faults", nargs="+", choices=FAULTS, default=FAULTS)
    parser.add_argument("--agent", choices=("smtp-filter", "milter"), default="smtp-filter")
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--fault-at", type=float, default=60.0)
    parser.add_argument("--fault-downtime", type=float, default=30.0)
    parser.add_argument("--drain-minutes", type=float, default=5.0)
    args = parser.parse_args()
    print(HEADER, flush=True)
    failed = False
    for fault in args.faults:
        report = run_one(fault, args)
        print(row(report, args), flush=True)
        print(json.dumps(report), file=sys.stderr, flush=True)
        failed |= "error" in report or report.get("lost") != 0 or report.get("duplicated") != 0
    print("command: " + " ".join(["bench/faults.py", *sys.argv[1:]]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
