"""Signature-database benchmark: load time, memory and match speed at two sizes.

Usage (from the repository root)::

    .venv/bin/python bench/signatures.py                  # 220k and 2.2M signature sets
    .venv/bin/python bench/signatures.py --sizes default  # 220k only
    .venv/bin/python bench/signatures.py --sigs DIR --corpus DIR --sizes default
    .venv/bin/python bench/signatures.py --baseline COMMIT  # and an older engine, same run

For each size it runs three fresh child processes on the same signature folder:

* ``cold``: empty cache folder, then :func:`load_signatures` (parse, compile,
  write the cache): wall time, RSS after the load, peak RSS of the process and
  of its compile children;
* ``cached``: load from the cache written above: wall time, RSS after the load;
  then every message of the corpus is decomposed with the engine's walker and
  each object goes through :meth:`SignatureSet.match` as the engine calls it.
  Match MB/s counts the bytes of every object handed to ``match`` over the
  time spent inside ``match``; msgs/s counts whole messages over walk plus
  match.  RSS after the scan and the peak during it (the peak is reset after
  the load) are reported, and the match time per file kind.

``--baseline COMMIT`` repeats every measurement with the engine of
``COMMIT`` (``git archive`` of its ``src`` into a temporary folder, put first
on ``PYTHONPATH``), interleaved with this tree's so both see the same machine
load; the table then has a row per size and engine.

It prints one JSON line and rewrites the "Signature database" section of
BENCHMARKS.md (``--no-update`` leaves the file alone).  Times depend on the
machine's load: the load average is recorded before and after.

SECURITY: reads the generated signature set and corpus (EICAR and ClamAV's
harmless test files) and writes only the cache folder under the work folder.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.benchdata import bench_work_dir, make_corpus, make_sigs  # noqa: E402

PROFILES = {
    "default": {"hashes": 200_000, "bodies": 20_000},
    "big": {"hashes": 2_000_000, "bodies": 200_000},
}
BENCHMARKS_MD = REPO / "BENCHMARKS.md"
BEGIN, END = "<!-- bench/signatures.py -->", "<!-- end bench/signatures.py -->"


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _reset_peak() -> None:
    """Reset VmHWM so the next peak is the scan's alone (Linux 4.0+)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _child_peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)


# --- child side -----------------------------------------------------------------


def measure(mode: str, sigdir: Path, cache: Path, corpus: Path | None) -> dict[str, Any]:
    from mailwarden.engine.signatures import load_signatures

    if mode == "cold":
        shutil.rmtree(cache, ignore_errors=True)
    started = time.perf_counter()
    sigs = load_signatures([sigdir], bundled=False, cache_dir=cache)
    out: dict[str, Any] = {
        "load_s": round(time.perf_counter() - started, 3),
        "from_cache": sigs.report.from_cache,
        "signatures": sigs.signature_count,
        "extra": sigs.report.extra,
        "rss_after_load_mb": _status_mb("VmRSS"),
        "peak_load_mb": _status_mb("VmHWM"),
        "compile_child_peak_mb": _child_peak_mb(),
    }
    if mode == "cold" or corpus is None:
        return out
    out.update(_scan(sigs, corpus))
    return out


def _scan(sigs: Any, corpus: Path) -> dict[str, Any]:
    from mailwarden.engine.limits import Limits
    from mailwarden.engine.objects import ScanObject, WalkContext
    from mailwarden.engine.walk import walk

    files = sorted(corpus.glob("*.eml"))
    _reset_peak()
    per_kind: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    matched_bytes = 0
    match_s = match_cpu = 0.0
    hits = 0
    clock, cpu = time.perf_counter, time.process_time
    t0, c0 = clock(), cpu()
    for path in files:
        data = path.read_bytes()
        ctx = WalkContext(Limits())
        try:
            for obj, kind in walk(ScanObject(data), ctx, as_mail=True):
                t, c = clock(), cpu()
                found = sigs.match(obj.data, kind, container=obj.parent_kind)
                spent = clock() - t
                match_cpu += cpu() - c
                match_s += spent
                matched_bytes += len(obj.data)
                slot = per_kind[kind.name.lower()]
                slot[0] += len(obj.data)
                slot[1] += spent
                if found:
                    hits += 1
                    break
        finally:
            ctx.close()
    wall, scan_cpu = clock() - t0, cpu() - c0
    return {
        "messages": len(files),
        "hits": hits,
        "scan_wall_s": round(wall, 3),
        "msgs_per_s": round(len(files) / wall, 1),
        "matched_MB": round(matched_bytes / 1e6, 1),
        "match_s": round(match_s, 3),
        "match_MB_per_s": round(matched_bytes / match_s / 1e6, 1),
        # CPU time is what one scan costs; wall time also counts other work on the machine
        "msgs_per_cpu_s": round(len(files) / scan_cpu, 1),
        "match_MB_per_cpu_s": round(matched_bytes / match_cpu / 1e6, 1),
        "per_kind_MB_per_s": {
            k: round(v[0] / v[1] / 1e6, 1) for k, v in sorted(per_kind.items()) if v[1] > 0
        },
        "rss_after_scan_mb": _status_mb("VmRSS"),
        "peak_scan_mb": _status_mb("VmHWM"),
    }


# --- parent side ----------------------------------------------------------------


def _child(
    mode: str, sigdir: Path, cache: Path, corpus: Path, src: Path | None = None
) -> dict[str, Any]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    cmd = [sys.executable, __file__, "_measure", mode, str(sigdir), str(cache), str(corpus)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} measurement failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run_profile(sigdir: Path, corpus: Path, cache: Path, src: Path | None = None) -> dict[str, Any]:
    return {
        "cold": _child("cold", sigdir, cache, corpus, src),
        "cached": _child("cached", sigdir, cache, corpus, src),
    }


def extract_commit(commit: str, into: Path) -> Path:
    """``src`` of ``commit`` extracted under ``into``; returns its path."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit, "src"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def render(result: dict[str, Any]) -> str:
    lines = [
        BEGIN,
        "## Signature database",
        "",
        f"Measured {result['when']} on {result['cores']} cores, Python {result['python']};"
        f" load average {result['load_before']} before the run, {result['load_after']} after.",
        f"Corpus: {result['messages']} messages. Matcher: {result['matcher']}.",
        "",
        "| signatures | load cold s | load cached s | RSS after cached load MB"
        " | RSS peak while scanning MB | peak during cold load MB (compile child)"
        " | match MB/s | msgs/s (walk + match) | match MB per CPU s | msgs per CPU s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, prof in result["profiles"].items():
        cold, cached = prof["cold"], prof["cached"]
        label = name.replace(" @ ", ", engine of ")
        lines.append(
            f"| {cached['signatures']:,} ({label}) | {cold['load_s']} | {cached['load_s']}"
            f" | {cached['rss_after_load_mb']} | {cached['peak_scan_mb']}"
            f" | {cold['peak_load_mb']} ({cold['compile_child_peak_mb']})"
            f" | {cached['match_MB_per_s']} | {cached['msgs_per_s']}"
            f" | {cached.get('match_MB_per_cpu_s', '-')} | {cached.get('msgs_per_cpu_s', '-')} |"
        )
    lines.append("")
    for engine in result.get("engines", ["this tree"]):
        suffix = "" if engine == "this tree" else f" @ {engine}"
        default = result["profiles"].get("default" + suffix)
        big = result["profiles"].get("big" + suffix)
        if default and big:
            small, large = default["cached"], big["cached"]
            ratio = large["msgs_per_s"] / small["msgs_per_s"]
            match = large["match_MB_per_s"] / small["match_MB_per_s"]
            per_cpu = large["msgs_per_cpu_s"] / small["msgs_per_cpu_s"]
            match_cpu = large["match_MB_per_cpu_s"] / small["match_MB_per_cpu_s"]
            lines.append(
                f"Big size over default size, {engine}: msgs/s {ratio:.0%}, match MB/s"
                f" {match:.0%}; per CPU second: msgs {per_cpu:.0%}, match MB {match_cpu:.0%}."
            )
            lines.append("")
    for name, prof in result["profiles"].items():
        kinds = ", ".join(f"{k} {v}" for k, v in prof["cached"]["per_kind_MB_per_s"].items())
        lines.append(f"Match MB/s per file kind ({name}): {kinds}.")
        lines.append("")
    lines += ["Command:", "", "```sh", result["command"], "```", END]
    return "\n".join(lines)


def update_benchmarks(
    section: str, path: Path = BENCHMARKS_MD, begin: str = BEGIN, end: str = END
) -> None:
    """Replace the section between ``begin`` and ``end`` (or append it)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def main(argv: list[str]) -> int:
    if argv[:1] == ["_measure"]:
        mode, sigdir, cache, corpus = argv[1:5]
        print(json.dumps(measure(mode, Path(sigdir), Path(cache), Path(corpus))))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--sizes", default="default,big", help="comma-separated: default, big")
    ap.add_argument("--sigs", type=Path, action="append", help="signature folder per size")
    ap.add_argument("--corpus", type=Path, help="corpus folder (default: generated)")
    ap.add_argument("--work", type=Path, default=bench_work_dir())
    ap.add_argument("--no-update", action="store_true", help="do not rewrite BENCHMARKS.md")
    ap.add_argument("--baseline", metavar="COMMIT", help="also measure this commit's engine")
    args = ap.parse_args(argv)
    sizes = [s for s in args.sizes.split(",") if s]
    if args.sigs and len(args.sigs) != len(sizes):
        ap.error("give one --sigs per size")
    corpus = args.corpus or make_corpus(args.work / "corpus-2000", n=2000)
    tmp = tempfile.TemporaryDirectory(prefix="mw-sigbench-") if args.baseline else None
    baseline_src = extract_commit(args.baseline, Path(tmp.name)) if tmp is not None else None
    result: dict[str, Any] = {
        "when": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_before": loadavg(),
        "messages": len(list(corpus.glob("*.eml"))),
        "profiles": {},
        "engines": ["this tree"] + ([args.baseline] if args.baseline else []),
    }
    for i, size in enumerate(sizes):
        counts = PROFILES[size]
        sigdir = (
            args.sigs[i]
            if args.sigs
            else make_sigs(args.work / f"sigs-{counts['hashes']}-{counts['bodies']}", **counts)
        )
        cache = args.work / f"sigcache-{size}"
        result["profiles"][size] = run_profile(sigdir, corpus, cache)
        if baseline_src is not None:
            result["profiles"][f"{size} @ {args.baseline}"] = run_profile(
                sigdir, corpus, args.work / f"sigcache-{size}-baseline", baseline_src
            )
    if tmp is not None:
        tmp.cleanup()
    result["load_after"] = loadavg()
    from mailwarden.engine.signatures.matchers import hyperscan_available

    result["matcher"] = "hyperscan" if hyperscan_available() else "aho"
    result["command"] = (
        ".venv/bin/python bench/signatures.py"
        + (f" --sizes {args.sizes}" if args.sizes != "default,big" else "")
        + (f" --baseline {args.baseline}" if args.baseline else "")
    )
    print(json.dumps(result))
    if not args.no_update:
        update_benchmarks(render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
