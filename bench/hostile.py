"""Hostile-payload benchmark: body signatures with open gaps against a crafted payload.

Usage (from the repository root)::

    .venv/bin/python bench/hostile.py                      # the working tree only
    .venv/bin/python bench/hostile.py --baseline 086876f   # and an older commit, same data

A signature such as ``AAAA*BBBB`` is found by its literal atoms first; the
payload then has to be checked for the whole pattern.  The payload here is
built to make that check as expensive as possible: it repeats the first piece
of every pattern (so every pattern is a candidate, many times over) and never
contains the last piece (so no search can stop early).  A matcher that
restarts a backtracking search at every occurrence of the first piece takes
time quadratic in the payload; a linear one takes a few passes per pattern.

The patterns (``--patterns``, default 300) come in three kinds, a third each:
``A*B``, ``A{16-}B`` and ``A{0-100000}B`` with ``A`` 8 and ``B`` 6 random
bytes.  For each size in ``--sizes`` (default 64 KiB and 1 MiB) two payloads
are scanned, each in a fresh child process: ``miss`` (first pieces only) and
``hit`` (the same plus the last piece of one pattern at the very end, which
must be found).
Reported: CPU seconds inside ``SignatureSet.match`` and, where the engine
counts it, the confirmation work (positions examined).

``--baseline COMMIT`` also runs the engine of ``COMMIT`` (extracted with
``git archive`` into a temporary folder) on the same signatures and the
payloads up to ``--baseline-max-size`` bytes (a quadratic engine would take
hours on the larger ones).
The result goes to the "Hostile payloads" section of BENCHMARKS.md unless
``--no-update`` is given.

SECURITY: writes only a temporary folder; the payloads are random bytes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from signatures import extract_commit, loadavg, update_benchmarks  # bench/signatures.py

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = REPO / "BENCHMARKS.md"
BEGIN, END = "<!-- bench/hostile.py -->", "<!-- end bench/hostile.py -->"
KINDS = ("*", "{16-}", "{0-100000}")


def make_signatures(folder: Path, count: int, seed: int = 7) -> list[tuple[bytes, bytes]]:
    """Write ``hostile.ndb``; returns each pattern's (first piece, last piece)."""
    rng = random.Random(seed)
    pieces = [(rng.randbytes(8), rng.randbytes(6)) for _ in range(count)]
    lines = [
        f"Hostile.Gap.{i}:0:*:{a.hex()}{KINDS[i % len(KINDS)]}{b.hex()}"
        for i, (a, b) in enumerate(pieces)
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hostile.ndb").write_text("\n".join(lines) + "\n")
    return pieces


def make_payload(pieces: list[tuple[bytes, bytes]], size: int, hit: bool) -> bytes:
    unit = b"".join(a for a, _ in pieces)
    body = (unit * (size // len(unit) + 1))[:size]
    return body + pieces[0][1] if hit else body


# --- child side -------------------------------------------------------------------


def measure(sigdir: Path, payload_path: Path) -> dict[str, Any]:
    from mailwarden.engine.filetype import FileKind
    from mailwarden.engine.signatures import load_signatures

    sigs = load_signatures([sigdir], bundled=False)
    payload = payload_path.read_bytes()
    cpu, wall = time.process_time(), time.perf_counter()
    found = sigs.match(payload, FileKind.BINARY, all_matches=True)
    out: dict[str, Any] = {
        "cpu_s": round(time.process_time() - cpu, 3),
        "wall_s": round(time.perf_counter() - wall, 3),
        "found": sorted(h.name for h in found),
    }
    meter = getattr(sigs, "confirm_meter", None)
    if meter is not None:
        out["positions"] = meter.positions
        out["searches"] = meter.searches
    return out


# --- parent side ------------------------------------------------------------------


def _child(src: Path | None, sigdir: Path, payload: Path) -> dict[str, Any]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    cmd = [sys.executable, __file__, "_measure", str(sigdir), str(payload)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"measurement failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def render(result: dict[str, Any]) -> str:
    lines = [
        BEGIN,
        "## Hostile payloads: body signatures with open gaps",
        "",
        f"Measured {result['when']} on {result['cores']} cores; load average"
        f" {result['load_before']} before the run, {result['load_after']} after.",
        f"{result['patterns']} patterns (a third each `A*B`, `A{{16-}}B`, `A{{0-100000}}B`),"
        " payloads repeating every `A` and never a `B` (`miss`), or the same plus"
        " one `B` at the end (`hit`).",
        "",
        "| engine | payload bytes | payload | CPU s in match | positions examined | findings |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in result["rows"]:
        positions = f"{row['positions']:,}" if "positions" in row else "-"
        lines.append(
            f"| {row['engine']} | {row['size']:,} | {row['payload']} | {row['cpu_s']}"
            f" | {positions} | {len(row['found'])} |"
        )
    ours = {(r["size"], r["payload"]): r for r in result["rows"] if r["engine"] == "working tree"}
    ratios = []
    for r in result["rows"]:
        mine = ours.get((r["size"], r["payload"]))
        if r["engine"] != "working tree" and mine is not None:
            ratio = r["cpu_s"] / max(mine["cpu_s"], 1e-3)
            ratios.append(f"{r['size']:,} {r['payload']} {ratio:.0f}x")
    if ratios:
        lines += [
            "",
            "CPU time of the baseline over the working tree's: " + ", ".join(ratios) + ".",
        ]
    lines += ["", "Command:", "", "```sh", result["command"], "```", END]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv[:1] == ["_measure"]:
        print(json.dumps(measure(Path(argv[1]), Path(argv[2]))))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--patterns", type=int, default=300)
    ap.add_argument("--sizes", default="65536,1048576", help="comma-separated payload bytes")
    ap.add_argument("--baseline", metavar="COMMIT", help="also measure this commit's engine")
    ap.add_argument("--baseline-max-size", type=int, default=65536)
    ap.add_argument("--no-update", action="store_true", help="do not rewrite BENCHMARKS.md")
    args = ap.parse_args(argv)
    result: dict[str, Any] = {
        "when": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "load_before": loadavg(),
        "patterns": args.patterns,
        "rows": [],
    }
    with tempfile.TemporaryDirectory(prefix="mw-hostile-") as tmp:
        work = Path(tmp)
        pieces = make_signatures(work / "sigs", args.patterns)
        engines: list[tuple[str, Path | None, int]] = [("working tree", None, 1 << 62)]
        if args.baseline:
            src = extract_commit(args.baseline, work)
            engines.append((args.baseline, src, args.baseline_max_size))
        for size in (int(x) for x in args.sizes.split(",") if x):
            for name, hit in (("miss", False), ("hit", True)):
                path = work / f"{name}-{size}.bin"
                path.write_bytes(make_payload(pieces, size, hit))
                for label, src, max_size in engines:
                    if size > max_size:
                        continue
                    row = _child(src, work / "sigs", path)
                    row.update(engine=label, payload=name, size=size)
                    result["rows"].append(row)
                    print(json.dumps(row), flush=True)
    result["load_after"] = loadavg()
    command = ".venv/bin/python bench/hostile.py"
    if args.baseline:
        command += f" --baseline {args.baseline}"
        if args.baseline_max_size != 65536:
            command += f" --baseline-max-size {args.baseline_max_size}"
    if args.patterns != 300:
        command += f" --patterns {args.patterns}"
    if args.sizes != "65536,1048576":
        command += f" --sizes {args.sizes}"
    result["command"] = command
    print(json.dumps(result))
    if not args.no_update:
        update_benchmarks(render(result), BENCHMARKS_MD, BEGIN, END)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
