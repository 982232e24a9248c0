"""Daemon benchmark: mailwarden's daemon against clamd over INSTREAM, in one run.

Usage (from the repository root)::

    .venv/bin/python bench/daemon.py                  # 2,000 messages, 220k signatures
    .venv/bin/python bench/daemon.py --messages 600   # quicker

Both daemons load the same shared signature set and scan the same shared
corpus (``support.benchdata``, under ``$BENCH_WORK`` or ``.bench-work/``);
clamd's clean-file cache is off.  For 1, 4 and 16 concurrent clients
(one connection per message, 64 KiB chunks, files read into memory first)
it measures messages/s, MB/s, p50/p99 latency, errors and the resident
memory of each daemon's whole process tree under load; then the time each
takes to reload its database and its peak memory meanwhile.  It prints
one JSON line and a Markdown table for BENCHMARKS.md.

SECURITY: both daemons listen on private unix sockets in fresh temporary
folders and are stopped by PID; only the generated corpus (EICAR and
ClamAV's harmless test files) is scanned.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from mailwarden.daemon import protocol as p  # noqa: E402
from support.benchdata import bench_work_dir, load_manifest, make_corpus, make_sigs  # noqa: E402
from support.clamd import start_clamd  # noqa: E402

CHUNK = 64 * 1024


def instream(path: str, data: bytes) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(600)
        sock.connect(path)
        sock.sendall(b"zINSTREAM\0")
        for part in p.chunks(data, CHUNK):
            sock.sendall(part)
        buf = b""
        while not buf.endswith(b"\0"):
            got = sock.recv(4096)
            if not got:
                break
            buf += got
    return buf.rstrip(b"\0").decode("utf-8", "replace")


def command(path: str, text: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(600)
        sock.connect(path)
        sock.sendall(p.command(text))
        buf = b""
        while not buf.endswith(b"\0"):
            got = sock.recv(65536)
            if not got:
                break
            buf += got
    return buf.rstrip(b"\0").decode()


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    out = [pid]
    for child_pid in _children(pid):
        out.extend(tree(child_pid))
    return out


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.extend(int(x) for x in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in bytes of the process tree under ``pid``."""
    rss = pss = 0
    for one in tree(pid):
        try:
            for line in Path(f"/proc/{one}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
        except OSError:
            continue
    return rss, pss


class Sampler:
    """Peak memory of a process tree while something runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss = self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, pss = memory(self.pid)
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)
            self._stop.wait(0.1)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def throughput(sock_path: str, pid: int, datas: list[bytes], clients: int) -> dict[str, Any]:
    latencies: list[float] = [0.0] * len(datas)
    replies: list[str] = [""] * len(datas)
    lock = threading.Lock()
    nxt = [0]

    def worker() -> None:
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= len(datas):
                return
            started = time.perf_counter()
            try:
                replies[i] = instream(sock_path, datas[i])
            except OSError as exc:
                replies[i] = f"client error {exc} ERROR"
            latencies[i] = time.perf_counter() - started

    with Sampler(pid) as sampler:
        started = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
    ordered = sorted(latencies)
    total = sum(len(d) for d in datas)
    return {
        "clients": clients,
        "msg_s": round(len(datas) / wall, 1),
        "mb_s": round(total / wall / 1e6, 2),
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
        "errors": sum(r.endswith("ERROR") for r in replies),
        "found": sum(r.endswith("FOUND") for r in replies),
        "rss_mb": round(sampler.peak_rss / 1e6),
        "pss_mb": round(sampler.peak_pss / 1e6),
    }


def reload_clamd(handle: Any) -> dict[str, Any]:
    before = handle.log.read_text(errors="replace").count("Database correctly reloaded")
    with Sampler(handle.pid) as sampler:
        started = time.perf_counter()
        command(str(handle.socket_path), "RELOAD")
        while handle.log.read_text(errors="replace").count("Database correctly reloaded") == before:
            time.sleep(0.05)
        seconds = time.perf_counter() - started
    return _reload_figures(seconds, sampler)


def reload_mailwarden(sock_path: str, pid: int) -> dict[str, Any]:
    def reloads() -> str:
        stats = command(sock_path, "STATS")
        return next(x for x in stats.splitlines() if x.startswith("RELOADS:"))

    before = reloads()
    with Sampler(pid) as sampler:
        started = time.perf_counter()
        command(sock_path, "RELOAD")
        while reloads() == before:
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        time.sleep(1.0)  # the old generation drains and exits
    return _reload_figures(seconds, sampler)


def _reload_figures(seconds: float, sampler: Sampler) -> dict[str, Any]:
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(sampler.peak_rss / 1e6),
        "peak_pss_mb": round(sampler.peak_pss / 1e6),
    }


def start_mailwarden(sigs: Path, folder: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    sock_path = str(folder / "mw.sock")
    config = folder / "mailwarden.toml"
    cache = bench_work_dir() / "cache"
    # run by hand as root on private folders: keep root (the drop is not measured)
    config.write_text(f'[engine]\ndatabases = []\ncache_dir = "{cache}"\n[serve]\nuser = "root"\n')
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mailwarden",
            "daemon",
            "--foreground",
            "-c",
            str(config),
            "--no-default-database",
            "-d",
            str(sigs),
            "--socket",
            sock_path,
            "--socket-group",
            "",
            "--pid-file",
            str(folder / "mw.pid"),
            "--workers",
            str(workers),
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(folder / "mw.log", "wb"),  # noqa: SIM115 - lives as long as the daemon
    )
    deadline = time.monotonic() + 600
    while not Path(sock_path).exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((folder / "mw.log").read_text())
        time.sleep(0.1)
    return proc, sock_path


def markdown(result: dict[str, Any]) -> str:
    rows = [
        "| clients | daemon | msg/s | MB/s | p50 ms | p99 ms | errors | RSS MB | PSS MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mw, cd in zip(result["mailwarden"]["runs"], result["clamd"]["runs"], strict=True):
        for name, run in (("mailwarden", mw), ("clamd", cd)):
            rows.append(
                f"| {run['clients']} | {name} | {run['msg_s']} | {run['mb_s']} | {run['p50_ms']} "
                f"| {run['p99_ms']} | {run['errors']} | {run['rss_mb']} | {run['pss_mb']} |"
            )
    rows += ["", "| reload | seconds | peak RSS MB | peak PSS MB |", "| --- | --- | --- | --- |"]
    for name in ("mailwarden", "clamd"):
        r = result[name]["reload"]
        rows.append(f"| {name} | {r['seconds']} | {r['peak_rss_mb']} | {r['peak_pss_mb']} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--workers", type=int, default=0, help="mailwarden workers, 0 = cores")
    args = parser.parse_args()
    work = bench_work_dir()
    sigs = make_sigs(work / "sigs")
    corpus = make_corpus(work / "corpus", n=2000)
    manifest = load_manifest(corpus)[: args.messages]
    datas = [(corpus / m["file"]).read_bytes() for m in manifest]
    clients = [int(c) for c in args.clients.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="mw-bench-"))
    result: dict[str, Any] = {
        "messages": len(datas),
        "bytes": sum(len(d) for d in datas),
        "cores": os.cpu_count(),
    }

    clamd = start_clamd(sigs, max_threads=max(clients))
    try:
        result["clamd"] = {
            "runs": [throughput(str(clamd.socket_path), clamd.pid, datas, c) for c in clients],
            "reload": reload_clamd(clamd),
        }
    finally:
        clamd.stop()

    proc, sock_path = start_mailwarden(sigs, folder, args.workers)
    try:
        result["mailwarden"] = {
            "runs": [throughput(sock_path, proc.pid, datas, c) for c in clients],
            "reload": reload_mailwarden(sock_path, proc.pid),
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    print(json.dumps(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
