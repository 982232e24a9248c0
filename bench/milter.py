"""Milter benchmark: Postfix with mailwarden's milter against Postfix with clamav-milter + clamd.

Usage (from the repository root, as root for Postfix)::

    .venv/bin/python bench/milter.py                  # 2,000 messages, 220k signatures
    .venv/bin/python bench/milter.py --messages 500   # quicker
    .venv/bin/python bench/milter.py --write          # also replace the section in BENCHMARKS.md

One private Postfix instance (``tests/support/postfix.py``) gets three
smtpd services that differ only in their milter, and relays everything to
the shared sink (``smtp_sink.py``); the shared blaster (``smtp_blast.py``, 8
concurrent SMTP sessions, one EHLO each) sends the same corpus through each,
with the same 220,045 shared signatures (``support.benchdata``):

* ``postfix``: no milter, the ceiling of this Postfix and this sink;
* ``mailwarden``: ``mailwarden milter`` on a unix socket and ``mailwarden
  daemon`` (2 workers, compiled database from its cache), default policy
  (infected mail refused at the end of DATA), history in SQLite;
* ``clamav-milter``: Debian's clamav-milter (``OnInfected Reject``,
  ``AddHeader Replace``) over clamd's unix socket, clamd started by the
  shared ``start_clamd.sh`` (clean-file cache off).

For each it reports messages/s, latency p50/p99 (MAIL FROM to the reply to
the final dot), verdict accuracy (infected refused, clean delivered with
``X-Virus-Scanned``) and the peak RSS/PSS of the scanner's process trees.
One JSON line per stack, then a Markdown section for BENCHMARKS.md.

SECURITY: everything listens on 127.0.0.1 or in private temporary folders
and is stopped by PID; only the generated corpus (EICAR and ClamAV's
harmless test files) is sent.
"""

from __future__ import annotations

import argparse
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
from support.postfix import PostfixInstance, milter_instance  # noqa: E402

MARK = "bench/milter.py"
CLAMD_PORT = 3312  # not clamd's usual 3310, which other runs may hold


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(check: Any, what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def accepts(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        return probe.connect_ex(str(path)) == 0


def stop(proc: subprocess.Popen[bytes] | int) -> None:
    pid = proc if isinstance(proc, int) else proc.pid
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if isinstance(proc, subprocess.Popen):
            if proc.poll() is not None:
                return
        else:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.shared = shared_bench_dir()
        self.work = bench_work_dir()
        self.root = Path(tempfile.mkdtemp(prefix="mwmilterbench-"))
        self.root.chmod(0o755)  # Postfix's processes reach the milter sockets below it
        self.run = self.root / "run"
        self.run.mkdir()
        self.env = {**os.environ, "BENCH_WORK": str(self.root), "CLAMD_TCP_PORT": str(CLAMD_PORT)}
        (self.root / ".run").mkdir()
        self.sigs = make_sigs(self.work / "sigs-200000-20000")
        self.corpus = make_corpus(self.work / "corpus-2000", n=2000)
        manifest = load_manifest(self.corpus)[: args.messages]
        self.total_bytes = sum(int(m["size"]) for m in manifest)
        self.infected = sum(1 for m in manifest if m["verdict"] == "infected")
        self.sink_port = free_port()
        self.started: list[subprocess.Popen[bytes] | int] = []
        self.postfix: PostfixInstance | None = None

    def spawn(self, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.run / f"{name}.log", "wb")  # noqa: SIM115 - the child's
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        log.close()
        self.started.append(proc)
        return proc

    # --- the pieces ---------------------------------------------------------------------

    def sink(self) -> subprocess.Popen[bytes]:
        proc = self.spawn(
            "sink",
            [
                sys.executable,
                str(self.shared / "smtp_sink.py"),
                "--port",
                str(self.sink_port),
                "--truncate",
                "--log",
                str(self.run / "sink.jsonl"),
            ],
        )
        wait_for(lambda: port_open(self.sink_port), "the sink")
        return proc

    def mailwarden(self) -> dict[str, int]:
        folder = self.root / "mw"
        folder.mkdir(mode=0o755)
        config = folder / "mailwarden.toml"
        config.write_text(
            f'[engine]\ndatabases = ["{self.sigs}"]\ncache_dir = "{self.work / "engine-cache"}"\n'
            f'[daemon]\nsocket = "{folder / "d.sock"}"\nsocket_group = ""\npid_file = ""\n'
            f"workers = {self.args.workers}\n"
            f'[store]\ndatabase = "{folder / "mw.sqlite3"}"\nspool_dir = "{folder / "q"}"\n'
            f'[release]\nsecret_file = "{folder / "release.key"}"\n'
            '[headers]\nhostname = "gw.bench.example"\n'
            # run by hand as root on private folders: keep root (the drop is not measured)
            '[serve]\nuser = "root"\n'
            f'[milter]\nsocket = "unix:{folder / "milter.sock"}"\nsocket_mode = "0666"\n'
        )
        mw = [sys.executable, "-m", "mailwarden"]
        daemon = self.spawn("daemon", [*mw, "daemon", "-c", str(config), "--foreground"])
        wait_for(lambda: accepts(folder / "d.sock"), "mailwarden daemon (see run/daemon.log)")
        milter = self.spawn("milter", [*mw, "milter", "-c", str(config)])
        wait_for(lambda: accepts(folder / "milter.sock"), "mailwarden milter")
        return {"milter": milter.pid, "daemon": daemon.pid}

    def clamav(self) -> dict[str, int]:
        out = subprocess.run(
            [str(self.shared / "start_clamd.sh"), str(self.sigs)],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )
        values = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
        clamd = int(values["CLAMD_PID"])
        self.started.append(clamd)
        folder = self.root / "clamav-milter"
        folder.mkdir(mode=0o755)
        conf = folder / "clamav-milter.conf"
        conf.write_text(
            f"MilterSocket unix:{folder / 'milter.sock'}\n"
            "MilterSocketMode 666\n"
            "FixStaleSocket true\n"
            "Foreground true\n"
            f"PidFile {folder / 'clamav-milter.pid'}\n"
            f"ClamdSocket unix:{values['CLAMD_SOCK']}\n"
            "OnClean Accept\nOnInfected Reject\nOnFail Defer\n"
            "AddHeader Replace\n"
            "MaxFileSize 64M\n"
            f"TemporaryDirectory {folder}\n"
            f"LogFile {folder / 'clamav-milter.log'}\n"
            "LogVerbose false\nLogInfected Off\nLogClean Off\n"
        )
        milter = self.spawn("clamav-milter", ["clamav-milter", "-c", str(conf)])
        wait_for(lambda: accepts(folder / "milter.sock"), "clamav-milter")
        return {"clamav-milter": milter.pid, "clamd": clamd}

    def start_postfix(self, milters: dict[str, Path]) -> dict[str, int]:
        pf = milter_instance(
            self.root / "postfix",
            relay_port=self.sink_port,
            milters={name: f"unix:{sock}" for name, sock in milters.items()},
        )
        with open(pf.config_dir / "transport", "a") as fh:
            fh.write(f"bench.example smtp:[127.0.0.1]:{self.sink_port}\n")
        # the re-injection smtpd: no filter, no milter
        entry = {"postfix": pf.ports["reinject"], **{name: pf.ports[name] for name in milters}}
        with open(pf.config_dir / "main.cf", "a") as fh:
            # the queue must not be the bottleneck of the comparison
            fh.write("default_process_limit = 200\nnon_smtpd_milters =\n")
        pf.start()
        self.postfix = pf
        return entry

    def blast(self, label: str, port: int, watch: dict[str, int]) -> dict[str, Any]:
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
            "pass" if label == "postfix" else "filter",
            "--sink-log",
            str(self.run / "sink.jsonl"),
            "--sink-wait",
            "120",
            "--results",
            str(self.run / f"blast-{label}.jsonl"),
            "--label",
            label,
        ]
        for name, pid in watch.items():
            cmd += ["--watch", f"{name}={pid}"]
        out = subprocess.run(cmd, capture_output=True, text=True, env=self.env, check=True)
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result

    def stop_all(self) -> None:
        if self.postfix is not None:
            self.postfix.stop()
        for proc in reversed(self.started):
            stop(proc)
        self.started.clear()


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def row(label: str, line: dict[str, Any], scanner: list[str]) -> dict[str, Any]:
    proc = {k: v for k, v in line.get("proc", {}).items() if k in scanner}
    return {
        "stack": label,
        "msgs_per_s": line["msgs_per_s"],
        "MB_per_s": line["MB_per_s"],
        "p50_ms": line["lat_ms_p50"],
        "p99_ms": line["lat_ms_p99"],
        "rss_peak_mb": round(sum(p["rss_total_peak_mb"] for p in proc.values()), 1),
        "pss_peak_mb": round(sum(p["pss_total_peak_mb"] for p in proc.values()), 1),
        "cpu_cores": round(sum(p["cpu_util_cores"] or 0 for p in proc.values()), 2),
        "accuracy": line.get("accuracy", {}),
        "codes": line.get("codes", {}),
        "sink": line.get("sink", {}),
        "mismatches": line.get("mismatches", [])[:3],
    }


def markdown(rows: list[dict[str, Any]], bench: Bench, args: argparse.Namespace) -> str:
    load = os.getloadavg()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out = [
        f"<!-- {MARK} -->",
        "## Milter: Postfix with mailwarden milter against Postfix with clamav-milter + clamd",
        "",
        f"Measured {when} on {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"load average {load[0]:.2f} at the end. One run, 8 concurrent SMTP sessions into one "
        f"private Postfix 3.7 (one smtpd service per stack, identical but for smtpd_milters), "
        f"{args.messages} messages of the shared corpus ({bench.total_bytes / 1e6:.1f} MB, "
        f"{bench.infected} infected), the shared 220,045 signatures, relayed to the same sink. "
        "Latency: MAIL FROM to the reply to the final dot. RSS/PSS/CPU: the scanner's process "
        "trees (milter + scanner), peak RSS/PSS summed.",
        "",
        "| stack | msg/s | MB/s | p50 ms | p99 ms | peak RSS MB (PSS) | CPU cores "
        "| infected refused | clean delivered, tagged |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        acc = r["accuracy"]
        tp = f"{acc.get('tp', '-')}/{acc.get('tp', 0) + acc.get('fn', 0)}" if "tp" in acc else "-"
        tn = acc.get("tn", acc.get("passed_ok", "-"))
        out.append(
            f"| {r['stack']} | {r['msgs_per_s']} | {r['MB_per_s']} | {r['p50_ms']} "
            f"| {r['p99_ms']} | {r['rss_peak_mb']} ({r['pss_peak_mb']}) | {r['cpu_cores']} "
            f"| {tp} | {tn} |"
        )
    by = {r["stack"]: r for r in rows}
    if "mailwarden" in by and "clamav-milter + clamd" in by:
        mw, cm = by["mailwarden"], by["clamav-milter + clamd"]
        out += [
            "",
            f"mailwarden/clamav-milter: throughput {mw['msgs_per_s'] / cm['msgs_per_s']:.2f}x, "
            f"p99 latency {mw['p99_ms'] / cm['p99_ms']:.2f}x, peak RSS "
            f"{mw['rss_peak_mb'] / max(cm['rss_peak_mb'], 0.1):.2f}x.",
        ]
    out += [
        "",
        "Command:",
        "",
        "```sh",
        f".venv/bin/python bench/milter.py --messages {args.messages} --write",
        "```",
        f"<!-- end {MARK} -->",
    ]
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2, help="mailwarden daemon workers")
    ap.add_argument("--write", action="store_true", help="replace the section in BENCHMARKS.md")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/milter.py: run as root (Postfix's master)", file=sys.stderr)
        return 2
    if shutil.which("clamav-milter") is None:
        print("bench/milter.py: apt-get install clamav-milter", file=sys.stderr)
        return 2
    bench = Bench(args)
    rows = []
    try:
        bench.sink()
        mw = bench.mailwarden()
        cm = bench.clamav()
        ports = bench.start_postfix(
            {
                "mailwarden": bench.root / "mw" / "milter.sock",
                "clamav-milter": bench.root / "clamav-milter" / "milter.sock",
            }
        )
        runs = [
            ("postfix", ports["postfix"], {}, []),
            ("mailwarden", ports["mailwarden"], mw, list(mw)),
            ("clamav-milter + clamd", ports["clamav-milter"], cm, list(cm)),
        ]
        for label, port, watch, scanner in runs:
            line = bench.blast(label.split(" ")[0], port, watch)
            rows.append(row(label, line, scanner))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        bench.stop_all()
    text = markdown(rows, bench, args)
    print(text)
    if args.write:
        replace_section(REPO / "BENCHMARKS.md", MARK, text)
    if not os.environ.get("MAILWARDEN_KEEP_BENCH_ROOT"):
        shutil.rmtree(bench.root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
