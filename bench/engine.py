"""Engine benchmark: mailwarden against clamd on the same mail and signatures, in one run.

Usage (from the repository root, after ``scripts/bootstrap``)::

    .venv/bin/python bench/engine.py            # 220k signatures, 2,000 messages
    .venv/bin/python bench/engine.py --big      # 2.2M signatures, about ClamAV's size

It generates (or reuses) the shared signature set and corpus under
``$BENCH_WORK`` (default ``.bench-work/``), then measures

a. clamd over INSTREAM with 4 clients, with the shared reference scripts
   (``start_clamd.sh``, ``clamd_throughput.py``), clean-file cache off;
b. the engine in-process: cold and cached database load, one process, then a
   pool of worker processes forked after the load (``ScanPool``);
c. ``mailwarden scan --json`` on the whole corpus.

It prints one JSON line and rewrites this profile's section of BENCHMARKS.md
(``--no-update`` leaves the file alone).  See bench/README.md.

SECURITY: starts clamd on a private unix socket plus a TCP port on 127.0.0.1
(the reference script always opens one) and stops it by PID; scans only the
generated corpus (EICAR and ClamAV's harmless test files).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.benchdata import (  # noqa: E402 - after the path set-up above
    bench_work_dir,
    load_manifest,
    make_corpus,
    make_sigs,
    shared_bench_dir,
)
from support.outcomes import Outcome, agree, clamd_outcome, engine_outcome  # noqa: E402

PROFILES = {
    "default": {"hashes": 200_000, "bodies": 20_000},
    "big": {"hashes": 2_000_000, "bodies": 200_000},
}
BENCHMARKS_MD = REPO / "BENCHMARKS.md"


def _percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks, as the reference scripts compute it."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _procstat() -> Any:
    sys.path.insert(0, str(shared_bench_dir()))
    import procstat

    return procstat


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _throughput(n: int, nbytes: int, wall: float, lats: list[float]) -> dict[str, Any]:
    return {
        "messages": n,
        "wall_s": round(wall, 3),
        "msgs_per_s": round(n / wall, 1),
        "MB_per_s": round(nbytes / wall / 1e6, 2),
        "lat_ms_p50": round(_percentile(lats, 0.50) * 1000, 2) if lats else None,
        "lat_ms_p99": round(_percentile(lats, 0.99) * 1000, 2) if lats else None,
    }


# --- a. clamd ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _stop(pid: int, timeout: float = 30.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def _clamd(sigdir: Path, work: Path) -> Iterator[dict[str, Any]]:
    """Start clamd with the reference script; yield its env plus the load time."""
    env = dict(os.environ, BENCH_WORK=str(work), CLAMD_TCP_PORT=str(_free_port()))
    started = time.perf_counter()
    proc = subprocess.run(
        ["bash", str(shared_bench_dir() / "start_clamd.sh"), str(sigdir)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    load_s = time.perf_counter() - started
    info: dict[str, Any] = dict(
        line.split("=", 1) for line in proc.stdout.splitlines() if line.startswith("CLAMD_")
    )
    # The script's own figure has one decimal; the wall time (a few ms of
    # script start-up more) keeps small loads measurable.
    info["load_s"] = round(load_s, 2)
    pid = int(info["CLAMD_PID"])
    try:
        yield info
    finally:
        _stop(pid)
        shutil.rmtree(info["CLAMD_DIR"], ignore_errors=True)


def run_clamd(sigdir: Path, corpus: Path, work: Path, clients: int) -> dict[str, Any]:
    results = work / "results" / "clamd-latest.jsonl"
    results.parent.mkdir(parents=True, exist_ok=True)
    with _clamd(sigdir, work) as info:
        pid = int(info["CLAMD_PID"])
        idle = _rss_mb(pid)
        proc = subprocess.run(
            [
                sys.executable,
                str(shared_bench_dir() / "clamd_throughput.py"),
                "--unix",
                info["CLAMD_SOCK"],
                "-c",
                str(clients),
                "--corpus",
                str(corpus),
                "--watch",
                f"clamd={pid}",
                "--results",
                str(results),
                "--label",
                "bench-engine",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    raw = json.loads(proc.stdout.strip().splitlines()[-1])
    outcomes = {}
    for line in results.read_text().splitlines():
        rec = json.loads(line)
        outcomes[rec["file"]] = clamd_outcome(rec["reply"])
    mem = raw.get("proc", {}).get("clamd", {})
    summary = {k: raw[k] for k in ("messages", "wall_s", "msgs_per_s", "MB_per_s")}
    summary.update(
        lat_ms_p50=raw["lat_ms_p50"],
        lat_ms_p99=raw["lat_ms_p99"],
        clients=clients,
        load_s=info["load_s"],
        rss_idle_mb=idle,
        rss_peak_mb=mem.get("rss_total_peak_mb"),
        pss_peak_mb=mem.get("pss_total_peak_mb"),
        cpu_cores=mem.get("cpu_util_cores"),
        manifest_accuracy=raw.get("accuracy"),
    )
    return {"summary": summary, "outcomes": outcomes}


# --- b. the engine in-process (run in a child process of its own) ----------------------


def _engine_settings(sigdir: Path, cache: Path) -> Any:
    from mailwarden.engine import EngineSettings

    return EngineSettings(databases=(sigdir,), bundled=False, cache_dir=cache)


def measure_engine(sigdir: Path, corpus: Path, cache: Path, workers: int, cold: bool) -> None:
    """Child-process body: print one JSON object with load and scan figures.

    With ``cold`` it only loads with an empty cache; otherwise it loads from
    the cache and scans, so RSS is that of a process that did one cached load.
    """
    from mailwarden.engine import Engine, ScanPool

    procstat = _procstat()
    pid = os.getpid()
    if cold:
        shutil.rmtree(cache, ignore_errors=True)
    started = time.perf_counter()
    engine = Engine.load(_engine_settings(sigdir, cache))
    load_s = time.perf_counter() - started
    report = engine.signatures.report
    out: dict[str, Any] = {
        "load_s": round(load_s, 3),
        "from_cache": bool(getattr(report, "from_cache", False)),
        "signatures": engine.signature_count,
        "rss_idle_mb": _rss_mb(pid),
    }
    if cold:
        print(json.dumps(out))
        return
    gc.collect()
    gc.freeze()  # forked workers then share the loaded objects without touching them
    files = [corpus / e["file"] for e in load_manifest(corpus)]
    nbytes = sum(p.stat().st_size for p in files)

    sampler = procstat.Sampler({"engine": pid})
    sampler.start()
    lats: list[float] = []
    single: dict[str, dict[str, Any]] = {}
    t0 = time.perf_counter()
    for path in files:
        data = path.read_bytes()
        t = time.perf_counter()
        verdict = engine.scan_bytes(data)
        lats.append(time.perf_counter() - t)
        single[path.name] = verdict.to_dict()
    wall = time.perf_counter() - t0
    mem = sampler.stop()["engine"]
    out["single"] = _throughput(len(files), nbytes, wall, lats) | {
        "rss_peak_mb": mem["rss_total_peak_mb"],
        "pss_peak_mb": mem["pss_total_peak_mb"],
        "cpu_cores": mem["cpu_util_cores"],
    }

    pooled: dict[str, dict[str, Any]] = {}
    with ScanPool(engine, workers=workers) as pool:
        sampler = procstat.Sampler({"engine": pid})
        sampler.start()
        t0 = time.perf_counter()
        for name, verdict in pool.scan((p.name, str(p)) for p in files):
            pooled[name] = verdict.to_dict()
        wall = time.perf_counter() - t0
        mem = sampler.stop()["engine"]
    lats = [v["timings"].get("scan", 0.0) for v in pooled.values()]
    out["pool"] = _throughput(len(files), nbytes, wall, lats) | {
        "workers": workers,
        "rss_peak_mb": mem["rss_total_peak_mb"],
        "pss_peak_mb": mem["pss_total_peak_mb"],
        "cpu_cores": mem["cpu_util_cores"],
    }
    out["verdicts"] = single
    out["pool_verdicts"] = pooled
    print(json.dumps(out))


def _child(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"engine measurement failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run_engine(sigdir: Path, corpus: Path, work: Path, workers: int) -> dict[str, Any]:
    cache = work / "engine-cache"
    common = ["--sigdir", str(sigdir), "--corpus", str(corpus), "--cache", str(cache)]
    cold = _child(["_measure", *common, "--cold"])
    warm = _child(["_measure", *common, "--workers", str(workers)])
    return {"cold": cold, "warm": warm}


# --- c. the command line ------------------------------------------------------------------


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_cli(sigdir: Path, corpus: Path, work: Path, workers: int) -> dict[str, Any]:
    """Time ``mailwarden scan --json`` over every message, database load included."""
    config = work / "bench-mailwarden.toml"
    config.write_text(f'[engine]\ncache_dir = "{work / "engine-cache"}"\n')
    files = [str(corpus / e["file"]) for e in load_manifest(corpus)]
    nbytes = sum(Path(f).stat().st_size for f in files)
    exe = Path(sys.executable).with_name("mailwarden")
    cmd = [str(exe), "scan", "--json", "-c", str(config), "--no-default-database"]
    cmd += ["--database", str(sigdir), "--workers", str(workers), *files]
    procstat = _procstat()
    out_path = work / "results" / "cli-latest.jsonl"
    # The CLI and its workers are gone when the sampler stops, so their CPU
    # time comes from the rusage of reaped children instead.
    cpu0 = _children_cpu_s()
    with open(out_path, "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, text=True)
        sampler = procstat.Sampler({"cli": proc.pid})
        sampler.start()
        _, stderr = proc.communicate()
        wall = time.perf_counter() - t0
        mem = sampler.stop()["cli"]
    if proc.returncode not in (0, 1, 2):
        raise RuntimeError(f"mailwarden scan exited {proc.returncode}:\n{stderr[-4000:]}")
    verdicts = {}
    for line in out_path.read_text().splitlines():
        rec = json.loads(line)
        verdicts[Path(rec["path"]).name] = rec
    summary = _throughput(len(files), nbytes, wall, []) | {
        "workers": workers,
        "exit": proc.returncode,
        "rss_peak_mb": mem["rss_total_peak_mb"],
        "pss_peak_mb": mem["pss_total_peak_mb"],
        "cpu_cores": round((_children_cpu_s() - cpu0) / wall, 2),
    }
    return {"summary": summary, "verdicts": verdicts}


# --- comparison, report -------------------------------------------------------------------


def compare(clamd: dict[str, Outcome], ours: dict[str, dict[str, Any]]) -> dict[str, Any]:
    same = 0
    differ: list[str] = []
    for name, theirs in clamd.items():
        mine = engine_outcome(ours[name]) if name in ours else Outcome("missing")
        if agree(theirs, mine):
            same += 1
        else:
            differ.append(f"{name}: clamd={theirs.label} mailwarden={mine.label}")
    return {"agree": same, "total": len(clamd), "differences": differ[:10]}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def machine() -> dict[str, Any]:
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "nproc": os.cpu_count(),
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "cpu": next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            platform.machine(),
        ),
        "python": platform.python_version(),
        # Other work on the machine skews every figure: keep the evidence.
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "clamd": subprocess.run(
            ["clamd", "--version"], capture_output=True, text=True, check=False
        ).stdout.strip(),
    }


def _fmt(value: Any) -> str:
    return "-" if value is None else str(value)


def render_section(result: dict[str, Any], command: str) -> str:
    c, e, cli = result["clamd"], result["engine"], result["cli"]
    ag = result["agreement"]
    rows = [
        (
            f"clamd, INSTREAM, {c['clients']} clients",
            c["msgs_per_s"],
            c["MB_per_s"],
            c["lat_ms_p50"],
            c["lat_ms_p99"],
            f"{c['load_s']} (no cache)",
            c["rss_idle_mb"],
            c["rss_peak_mb"],
            c["cpu_cores"],
            "reference",
        ),
        (
            "mailwarden engine, 1 process",
            e["single"]["msgs_per_s"],
            e["single"]["MB_per_s"],
            e["single"]["lat_ms_p50"],
            e["single"]["lat_ms_p99"],
            f"{e['load_cold_s']} / {e['load_cached_s']}",
            e["rss_idle_mb"],
            e["single"]["rss_peak_mb"],
            e["single"]["cpu_cores"],
            f"{ag['single']['agree']}/{ag['single']['total']}",
        ),
        (
            f"mailwarden engine, pool of {e['pool']['workers']}",
            e["pool"]["msgs_per_s"],
            e["pool"]["MB_per_s"],
            e["pool"]["lat_ms_p50"],
            e["pool"]["lat_ms_p99"],
            "(same)",
            "-",
            f"{e['pool']['rss_peak_mb']} (PSS {e['pool']['pss_peak_mb']})",
            e["pool"]["cpu_cores"],
            f"{ag['pool']['agree']}/{ag['pool']['total']}",
        ),
        (
            f"mailwarden scan --json, {cli['workers']} workers",
            cli["msgs_per_s"],
            cli["MB_per_s"],
            "-",
            "-",
            "(cached, in wall time)",
            "-",
            f"{cli['rss_peak_mb']} (PSS {cli['pss_peak_mb']})",
            cli.get("cpu_cores"),
            f"{ag['cli']['agree']}/{ag['cli']['total']}",
        ),
    ]
    head = (
        "| scanner | msg/s | MB/s | p50 ms | p99 ms | DB load s (cold / cached) "
        "| RSS idle MB | RSS peak MB | CPU cores | verdicts = clamd |"
    )
    lines = [head, "|" + " --- |" * 10]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    r, m, d = result["ratios"], result["machine"], result["data"]
    diffs = [x for k in ("single", "pool", "cli") for x in ag[k]["differences"]]
    return "\n".join(
        [
            f"## Engine against clamd: {result['profile']} profile",
            "",
            f"Measured {result['date']} on {m['nproc']} cores, {m['ram_gb']} GB RAM "
            f"({m['cpu']}), Python {m['python']}, {m['clamd']}; load average "
            f"{m['loadavg_1m_before']} before the run, {m['loadavg_1m']} after.",
            f"Data: {d['signatures']:,} signatures ({d['hashes']:,} hash + {d['bodies']:,} body "
            f"+ EICAR and test files), {d['messages']:,} messages, {d['bytes'] / 1e6:.0f} MB.",
            "",
            *lines,
            "",
            f"Ratios mailwarden/clamd: throughput 1 process {_fmt(r['single_msgs'])}x, "
            f"pool {_fmt(r['pool_msgs'])}x, CLI {_fmt(r['cli_msgs'])}x; "
            f"p99 latency 1 process {_fmt(r['single_p99'])}x, pool {_fmt(r['pool_p99'])}x; "
            f"peak RSS pool {_fmt(r['pool_rss'])}x (PSS {_fmt(r['pool_pss'])}x); "
            f"database load cold {_fmt(r['load_cold'])}x, cached {_fmt(r['load_cached'])}x.",
            "",
            "CPU cores: CPU time over wall time of the scanner's processes; below 2 means "
            "other work on the machine took the rest.",
            "",
            "Disagreements with clamd (first 10): " + ("; ".join(diffs[:10]) or "none") + ".",
            "",
            "Command:",
            "",
            "```sh",
            command,
            "```",
        ]
    )


def update_benchmarks(section: str, profile: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace this profile's section between its markers, or append it."""
    begin, end = f"<!-- bench/engine.py {profile} -->", f"<!-- end bench/engine.py {profile} -->"
    text = path.read_text() if path.exists() else ""
    block = f"{begin}\n{section}\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_measure"]:
        sub = argparse.ArgumentParser()
        for opt in ("--sigdir", "--corpus", "--cache"):
            sub.add_argument(opt, type=Path, required=True)
        sub.add_argument("--workers", type=int, default=2)
        sub.add_argument("--cold", action="store_true")
        a = sub.parse_args(argv[1:])
        measure_engine(a.sigdir, a.corpus, a.cache, a.workers, a.cold)
        return 0

    ap = argparse.ArgumentParser(description="mailwarden's engine against clamd, one run.")
    ap.add_argument("--big", action="store_true", help="2,000,000 hash + 200,000 body signatures")
    ap.add_argument("--messages", type=int, default=2_000, help="corpus size (default 2000)")
    ap.add_argument("--clients", type=int, default=4, help="clamd INSTREAM clients")
    ap.add_argument("--workers", type=int, default=2, help="mailwarden worker processes")
    ap.add_argument("--work", type=Path, default=None, help="data folder (default $BENCH_WORK)")
    ap.add_argument("--no-update", action="store_true", help="do not rewrite BENCHMARKS.md")
    args = ap.parse_args(argv)

    profile = "big" if args.big else "default"
    if args.messages != 2_000:
        profile += f"-{args.messages}"
    sizes = PROFILES["big" if args.big else "default"]
    work = (args.work or bench_work_dir()).resolve()
    sigdir = make_sigs(work / f"sigs-{sizes['hashes']}-{sizes['bodies']}", **sizes)
    corpus = make_corpus(work / f"corpus-{args.messages}", n=args.messages)
    nbytes = sum(e["size"] for e in load_manifest(corpus))

    load_before = round(os.getloadavg()[0], 2)
    clamd = run_clamd(sigdir, corpus, work, args.clients)
    engine = run_engine(sigdir, corpus, work, args.workers)
    cli = run_cli(sigdir, corpus, work, args.workers)

    warm, cold = engine["warm"], engine["cold"]
    c = clamd["summary"]
    eng = {
        "signatures": warm["signatures"],
        "load_cold_s": cold["load_s"],
        "load_cached_s": warm["load_s"],
        "cached_load_from_cache": warm["from_cache"],
        "rss_idle_mb": warm["rss_idle_mb"],
        "single": warm["single"],
        "pool": warm["pool"],
    }
    agreement = {
        "single": compare(clamd["outcomes"], warm["verdicts"]),
        "pool": compare(clamd["outcomes"], warm["pool_verdicts"]),
        "cli": compare(clamd["outcomes"], cli["verdicts"]),
    }
    ratios = {
        "single_msgs": _ratio(eng["single"]["msgs_per_s"], c["msgs_per_s"]),
        "pool_msgs": _ratio(eng["pool"]["msgs_per_s"], c["msgs_per_s"]),
        "cli_msgs": _ratio(cli["summary"]["msgs_per_s"], c["msgs_per_s"]),
        "single_p99": _ratio(eng["single"]["lat_ms_p99"], c["lat_ms_p99"]),
        "pool_p99": _ratio(eng["pool"]["lat_ms_p99"], c["lat_ms_p99"]),
        "pool_rss": _ratio(eng["pool"]["rss_peak_mb"], c["rss_peak_mb"]),
        "pool_pss": _ratio(eng["pool"]["pss_peak_mb"], c["pss_peak_mb"]),
        "load_cold": _ratio(eng["load_cold_s"], c["load_s"]),
        "load_cached": _ratio(eng["load_cached_s"], c["load_s"]),
    }
    command = ".venv/bin/python bench/engine.py" + (" --big" if args.big else "")
    if args.messages != 2_000:
        command += f" --messages {args.messages}"
    result = {
        "test": "engine_vs_clamd",
        "profile": profile,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine() | {"loadavg_1m_before": load_before},
        "data": {
            **sizes,
            "signatures": eng["signatures"],
            "messages": args.messages,
            "bytes": nbytes,
        },
        "clamd": c,
        "engine": eng,
        "cli": cli["summary"],
        "agreement": agreement,
        "ratios": ratios,
    }
    print(json.dumps(result))
    if not args.no_update:
        update_benchmarks(render_section(result, command), profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
