"""SMTP benchmark: mailwarden's after-queue filter against amavisd-new + clamd, in one run.

Usage (from the repository root, as root for amavisd)::

    .venv/bin/python bench/smtp.py                    # 2,000 messages, 220k signatures
    .venv/bin/python bench/smtp.py --messages 500     # quicker
    .venv/bin/python bench/smtp.py --write            # also replace the section in BENCHMARKS.md

Every stack gets the same shared corpus and signatures (``support.benchdata``,
under ``$BENCH_WORK`` or ``.bench-work/``), the same blaster
(``../shared/bench/smtp_blast.py``, 8 concurrent SMTP sessions, one EHLO per
session) and the same sink (``smtp_sink.py`` on 127.0.0.1:10025):

* ``sink``: the blaster straight into the sink, the loopback ceiling;
* ``relay``: a plain pass-through relay built from mailwarden's SMTP parts
  (aiosmtpd with streaming DATA, pooled aiosmtplib re-injection), no scan;
* ``mailwarden``: ``mailwarden smtp-filter`` and ``mailwarden daemon``
  (2 workers, compiled database from its cache), default policy (infected
  mail quarantined after the queue), quarantine and history in SQLite, one
  JSON log line per message;
* ``amavis``: amavisd-new (8 children) with clamd (``start_amavis.sh``,
  ``start_clamd.sh``: clean-file cache off, CONTSCAN), virus checks only.

For each it reports messages/s, latency p50/p99 (MAIL FROM to the reply to
the final dot), the latency added over the sink (for all messages and for
those up to 100 KB), verdict accuracy, and the peak RSS/PSS of each process
tree of the stack.  It prints one JSON line per stack and a Markdown section
for BENCHMARKS.md.

SECURITY: everything listens on 127.0.0.1 or in private temporary folders
and is stopped by PID; only the generated corpus (EICAR and ClamAV's
harmless test files) is sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.benchdata import (  # noqa: E402
    bench_work_dir,
    load_manifest,
    make_corpus,
    make_sigs,
    replace_section,
    shared_bench_dir,
)

SINK_PORT = 10025
AMAVIS_PORT = 10024
CLAMD_PORT = 3311  # not clamd's usual 3310, which other runs may hold
FILTER_PORT = 10030
RELAY_PORT = 10031
SMALL = 100 * 1024
MARK = "bench/smtp.py"


# --- the pass-through relay (run as: bench/smtp.py --serve-relay) ----------------------


def serve_relay(port: int, downstream: int) -> None:
    from mailwarden.config import defaults
    from mailwarden.intercept.downstream import SmtpDownstream, Transaction
    from mailwarden.intercept.handler import AgentHandler
    from mailwarden.intercept.server import AgentEnvelope, AgentServer
    from mailwarden.intercept.settings import SmtpSettings

    class Relay(AgentHandler):
        def __init__(self) -> None:
            self.down = SmtpDownstream("127.0.0.1", downstream, timeout=60, helo="relay.bench")

        async def handle_DATA(self, server: Any, session: Any, envelope: AgentEnvelope) -> str:
            assert envelope.spool is not None
            txn = Transaction(envelope.mail_from or "", tuple(envelope.rcpt_tos))
            replies = await self.down.deliver(envelope.spool.getvalue(), txn)
            return str(next(iter(replies.values())))

    settings = SmtpSettings.from_config(
        defaults(),
        "smtp_filter",
        listen=f"127.0.0.1:{port}",
        downstream=f"127.0.0.1:{downstream}",
        daemon_socket="unused",
    )

    async def main() -> None:
        agent = AgentServer(settings, Relay(), xforward=False)
        await agent.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print("listening", flush=True)
        await stop.wait()

    asyncio.run(main())


# --- helpers ---------------------------------------------------------------------------


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_port(port: int, up: bool, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while port_open(port) != up:
        if time.monotonic() > deadline:
            raise RuntimeError(f"port {port} {'never opened' if up else 'still busy'}")
        time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes] | int) -> None:
    pid = proc if isinstance(proc, int) else proc.pid
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(150):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if not isinstance(proc, int) and proc.poll() is not None:
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


def env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.shared = shared_bench_dir()
        self.work = bench_work_dir()
        # run files of the shared scripts (.run/clamd.env...) in a folder of our own,
        # so another benchmark using the shared work folder is not disturbed
        own = self.work / "smtp-bench"
        self.run = own / ".run"
        self.run.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "BENCH_WORK": str(own), "CLAMD_TCP_PORT": str(CLAMD_PORT)}
        self.sigs = make_sigs(self.work / "sigs-200000-20000")
        self.corpus = make_corpus(self.work / "corpus-2000", n=2000)
        manifest = load_manifest(self.corpus)[: args.messages]
        self.sizes = {m["file"]: int(m["size"]) for m in manifest}
        self.infected = sum(1 for m in manifest if m["verdict"] == "infected")
        self.total_bytes = sum(self.sizes.values())
        self.started: list[subprocess.Popen[bytes] | int] = []

    def spawn(self, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.run / f"smtpbench-{name}.log", "wb")  # noqa: SIM115 - child's
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        log.close()
        self.started.append(proc)
        return proc

    def blast(self, label: str, port: int, expect: str, watch: dict[str, int]) -> dict[str, Any]:
        results = self.run / f"smtpbench-{label}.jsonl"
        cmd = [
            sys.executable,
            str(self.shared / "smtp_blast.py"),
            "--port",
            str(port),
            "-k",
            "8",
            "--corpus",
            str(self.corpus),
            "--limit",
            str(self.args.messages),
            "--expect",
            expect,
            "--sink-log",
            str(self.run / "sink.jsonl"),
            "--results",
            str(results),
            "--label",
            label,
        ]
        for name, pid in watch.items():
            cmd += ["--watch", f"{name}={pid}"]
        out = subprocess.run(cmd, capture_output=True, text=True, env=self.env, check=True)
        line = json.loads(out.stdout.strip().splitlines()[-1])
        lat = {}
        for row in map(json.loads, results.read_text().splitlines()):
            lat[row["file"]] = float(row["lat_ms"])
        line["latencies"] = lat
        return line

    def sink(self) -> subprocess.Popen[bytes]:
        wait_port(SINK_PORT, up=False)
        proc = self.spawn(
            "sink",
            [
                sys.executable,
                str(self.shared / "smtp_sink.py"),
                "--truncate",
                "--log",
                str(self.run / "sink.jsonl"),
                "--max-size",
                str(64 * 1024 * 1024),
            ],
        )
        wait_port(SINK_PORT, up=True)
        return proc

    def mailwarden(self) -> tuple[dict[str, int], list[subprocess.Popen[bytes]]]:
        root = Path(tempfile.mkdtemp(prefix="mwbench-"))
        config = root / "mailwarden.toml"
        config.write_text(
            f'[engine]\ndatabases = ["{self.sigs}"]\ncache_dir = "{self.work / "engine-cache"}"\n'
            f'[daemon]\nsocket = "{root / "d.sock"}"\nsocket_group = ""\npid_file = ""\n'
            f"workers = {self.args.workers}\n"
            f'[store]\ndatabase = "{root / "mw.sqlite3"}"\nspool_dir = "{root / "q"}"\n'
            f'[release]\nsecret_file = "{root / "release.key"}"\n'
            '[headers]\nhostname = "gw.bench.example"\n'
            # run by hand as root on private folders: keep root (the drop is not measured)
            '[serve]\nuser = "root"\n'
        )
        mw = [sys.executable, "-m", "mailwarden"]
        daemon = self.spawn("daemon", [*mw, "daemon", "-c", str(config), "--foreground"])
        deadline = time.monotonic() + 600
        while not (root / "d.sock").exists():
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mailwarden daemon did not start; see smtpbench-daemon.log")
            time.sleep(0.2)
        wait_port(FILTER_PORT, up=False)
        filt = self.spawn(
            "filter",
            [
                *mw,
                "smtp-filter",
                "-c",
                str(config),
                "--listen",
                f"127.0.0.1:{FILTER_PORT}",
                "--downstream",
                f"127.0.0.1:{SINK_PORT}",
            ],
        )
        wait_port(FILTER_PORT, up=True)
        return {"filter": filt.pid, "daemon": daemon.pid}, [filt, daemon]

    def amavis(self) -> tuple[dict[str, int], list[int]]:
        wait_port(CLAMD_PORT, up=False)
        subprocess.run(
            [str(self.shared / "start_clamd.sh"), str(self.sigs)],
            env=self.env,
            check=True,
            capture_output=True,
        )
        clamd = int(env_file(self.run / "clamd.env")["CLAMD_PID"])
        wait_port(AMAVIS_PORT, up=False)
        subprocess.run(
            [str(self.shared / "start_amavis.sh")], env=self.env, check=True, capture_output=True
        )
        amavisd = int(env_file(self.run / "amavis.env")["AMAVIS_PID"])
        self.started += [amavisd, clamd]
        time.sleep(2)
        return {"amavisd": amavisd, "clamd": clamd}, [amavisd, clamd]

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            stop(proc)
        self.started.clear()


def summarize(
    label: str, line: dict[str, Any], base: dict[str, Any], sizes: dict[str, int]
) -> dict[str, Any]:
    lat, base_lat = line.pop("latencies"), base["latencies"]
    small = [v for f, v in lat.items() if sizes.get(f, 0) <= SMALL]
    small_base = [v for f, v in base_lat.items() if sizes.get(f, 0) <= SMALL]
    proc = line.get("proc", {})
    acc = line.get("accuracy", {})
    return {
        "stack": label,
        "msgs_per_s": line["msgs_per_s"],
        "MB_per_s": line["MB_per_s"],
        "p50_ms": line["lat_ms_p50"],
        "p99_ms": line["lat_ms_p99"],
        "added_p50_ms": round(line["lat_ms_p50"] - base["lat_ms_p50"], 1),
        "added_p99_ms": round(line["lat_ms_p99"] - base["lat_ms_p99"], 1),
        "small_added_p50_ms": round(percentile(small, 0.5) - percentile(small_base, 0.5), 1),
        "small_added_p99_ms": round(percentile(small, 0.99) - percentile(small_base, 0.99), 1),
        "rss_peak_mb": round(sum(p["rss_total_peak_mb"] for p in proc.values()), 1),
        "pss_peak_mb": round(sum(p["pss_total_peak_mb"] for p in proc.values()), 1),
        "cpu_cores": round(sum(p["cpu_util_cores"] or 0 for p in proc.values()), 2),
        "procs": {
            k: {"rss": v["rss_total_peak_mb"], "pss": v["pss_total_peak_mb"]}
            for k, v in proc.items()
        },
        "accuracy": acc,
        "codes": line.get("codes", {}),
        "sink": line.get("sink", {}),
        "mismatches": line.get("mismatches", [])[:3],
    }


def markdown(rows: list[dict[str, Any]], bench: Bench, args: argparse.Namespace) -> str:
    load = os.getloadavg()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out = [
        f"<!-- {MARK} -->",
        "## SMTP filter: mailwarden smtp-filter against amavisd-new + clamd",
        "",
        f"Measured {when} on {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"load average {load[0]:.2f} at the end. {args.reps} rounds in which the stacks "
        "take turns, each figure the median over the rounds; 8 concurrent SMTP sessions "
        f"(one EHLO each), {len(bench.sizes)} messages of the shared corpus "
        f"({bench.total_bytes / 1e6:.1f} MB, {bench.infected} infected), the shared "
        "220,045 signatures, the same sink. Latency: MAIL FROM to the reply to the final "
        "dot; added = this stack's percentile minus the sink's; small = messages up to "
        "100 KB. RSS/PSS: peak of each process tree of the stack, summed.",
        "",
        "| stack | msg/s | MB/s | p50 ms | p99 ms | added p50 / p99 ms | added p99 ms, <= 100 KB "
        "| peak RSS MB (PSS) | CPU cores | infected blocked | clean delivered |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        acc = r["accuracy"]
        tp = f"{acc.get('tp', '-')}/{acc.get('tp', 0) + acc.get('fn', 0)}" if "tp" in acc else "-"
        tn = acc.get("tn", acc.get("passed_ok", "-"))
        out.append(
            f"| {r['stack']} | {r['msgs_per_s']} | {r['MB_per_s']} | {r['p50_ms']} | {r['p99_ms']} "
            f"| {r['added_p50_ms']} / {r['added_p99_ms']} | {r['small_added_p99_ms']} "
            f"| {r['rss_peak_mb']} ({r['pss_peak_mb']}) | {r['cpu_cores']} | {tp} | {tn} |"
        )
    by = {r["stack"]: r for r in rows}
    if "mailwarden" in by and "amavisd-new + clamd" in by:
        mw, am = by["mailwarden"], by["amavisd-new + clamd"]
        out += [
            "",
            f"mailwarden/amavisd-new: throughput {mw['msgs_per_s'] / am['msgs_per_s']:.2f}x, "
            f"p99 latency {mw['p99_ms'] / am['p99_ms']:.2f}x, peak RSS "
            f"{mw['rss_peak_mb'] / am['rss_peak_mb']:.2f}x "
            f"(PSS {mw['pss_peak_mb'] / am['pss_peak_mb']:.2f}x).",
        ]
    out += [
        "",
        "Throughput of each round (msg/s): "
        + "; ".join(f"{r['stack']} {r.get('all_msgs_per_s', [r['msgs_per_s']])}" for r in rows)
        + ".",
        "",
        "Processes: "
        + "; ".join(
            f"{r['stack']}: "
            + ", ".join(f"{k} {v['rss']} MB (PSS {v['pss']})" for k, v in r["procs"].items())
            for r in rows
        )
        + ".",
        "",
        "Command:",
        "",
        "```sh",
        f".venv/bin/python bench/smtp.py --messages {args.messages} --reps {args.reps} --write",
        "```",
        f"<!-- end {MARK} -->",
    ]
    return "\n".join(out) + "\n"


def one_round(
    bench: Bench, args: argparse.Namespace, sink_pid: int
) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Each stack once: (label, blaster output, the sink's output of this round)."""
    base = bench.blast("sink", SINK_PORT, "pass", {"sink": sink_pid})
    out = [("sink", base, base)]
    wait_port(RELAY_PORT, up=False)
    relay = bench.spawn(
        "relay", [sys.executable, __file__, "--serve-relay", str(RELAY_PORT), str(SINK_PORT)]
    )
    wait_port(RELAY_PORT, up=True)
    out.append(
        ("relay (no scan)", bench.blast("relay", RELAY_PORT, "pass", {"relay": relay.pid}), base)
    )
    stop(relay)
    watch, procs = bench.mailwarden()
    out.append(("mailwarden", bench.blast("mailwarden", FILTER_PORT, "filter", watch), base))
    for proc in procs:
        stop(proc)
    have_amavis = shutil.which("amavisd") or Path("/usr/sbin/amavisd").exists()
    if have_amavis and not args.skip_amavis:
        watch_a, procs_a = bench.amavis()
        line = bench.blast("amavis", AMAVIS_PORT, "filter", watch_a)
        out.append(("amavisd-new + clamd", line, base))
        for pid in procs_a:
            stop(pid)
    return out


_MEDIAN_KEYS = (
    "msgs_per_s",
    "MB_per_s",
    "p50_ms",
    "p99_ms",
    "added_p50_ms",
    "added_p99_ms",
    "small_added_p50_ms",
    "small_added_p99_ms",
    "rss_peak_mb",
    "pss_peak_mb",
    "cpu_cores",
)


def median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the rounds; the rest from the round of median throughput."""
    ordered = sorted(rows, key=lambda r: r["msgs_per_s"])
    out = dict(ordered[len(ordered) // 2])
    for key in _MEDIAN_KEYS:
        values = sorted(r[key] for r in rows)
        out[key] = values[len(values) // 2]
    out["all_msgs_per_s"] = [r["msgs_per_s"] for r in rows]
    return out


def _from_output(path: Path) -> list[dict[str, Any]]:
    """The median rows of an earlier run's JSON lines (to rewrite the section)."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for line in path.read_text().splitlines():
        if line.startswith('{"stack"'):
            row = json.loads(line)
            runs.setdefault(row["stack"], []).append(row)
    return [median_row(r) for r in runs.values()]


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=3, help="rounds; each figure is the median")
    ap.add_argument("--workers", type=int, default=2, help="mailwarden daemon workers")
    ap.add_argument("--skip-amavis", action="store_true")
    ap.add_argument("--write", action="store_true", help="replace the section in BENCHMARKS.md")
    ap.add_argument("--serve-relay", nargs=2, type=int, metavar=("PORT", "DOWNSTREAM"))
    args = ap.parse_args()
    if args.serve_relay:
        serve_relay(*args.serve_relay)
        return 0
    bench = Bench(args)
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        sink = bench.sink()
        for rep in range(args.reps):
            # the stacks take turns, so a change in the machine's load hits them alike
            for label, line, base in one_round(bench, args, sink.pid):
                row = summarize(label, dict(line), base, bench.sizes)
                row["rep"] = rep + 1
                runs.setdefault(label, []).append(row)
                print(json.dumps(row), flush=True)
    finally:
        bench.stop_all()
    rows = [median_row(r) for r in runs.values()]
    text = markdown(rows, bench, args)
    print(text)
    if args.write:
        replace_section(REPO / "BENCHMARKS.md", MARK, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
