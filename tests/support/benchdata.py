"""Generate the shared benchmark signatures and corpus for tests and benchmarks.

The generators (``make_sigs.py``, ``make_corpus.py``) live beside the repository
in ``../shared/bench`` (override with ``$MAILWARDEN_SHARED_BENCH``); their output
is deterministic for given arguments.  Usage::

    sigdir = make_sigs(work / "sigs", hashes=20_000, bodies=2_000)
    corpus = make_corpus(work / "corpus", n=300)
    for entry in load_manifest(corpus): ...

Output goes only where the caller says: a temporary folder in tests, the
git-ignored ``.bench-work/`` (or ``$BENCH_WORK``) in benchmarks.  A folder that
already holds a complete result for the same arguments is reused.

SECURITY: runs the generator scripts with this interpreter; they write only
inside the given folder.  The generated corpus contains the EICAR test string
and ClamAV's harmless test files, never real malware.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Files make_sigs.py writes that a scanner should not try to load.
SIGS_MANIFEST = "sigs-manifest.json"


def shared_bench_dir() -> Path:
    """The folder holding the shared generators and reference scripts."""
    override = os.environ.get("MAILWARDEN_SHARED_BENCH")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "bench"


def bench_work_dir() -> Path:
    """Writable folder for benchmark data: ``$BENCH_WORK`` or ``.bench-work/``."""
    override = os.environ.get("BENCH_WORK")
    return Path(override) if override else REPO_ROOT / ".bench-work"


def _run_generator(script: str, args: list[str], out: Path, stamp: str) -> None:
    """Run one generator unless ``out`` already holds its result for ``args``."""
    marker = out / ".generated-with"
    wanted = json.dumps([script, *args])
    if marker.exists() and marker.read_text() == wanted:
        return
    path = shared_bench_dir() / script
    if not path.exists():
        raise FileNotFoundError(f"benchmark generator not found: {path}")
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, str(path), "--out", str(out), *args],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    if not (out / stamp).exists():
        raise RuntimeError(f"{script} did not write {out / stamp}")
    marker.write_text(wanted)


def make_sigs(out: Path, *, hashes: int = 200_000, bodies: int = 20_000) -> Path:
    """Write the signature folder (default seed) and return it."""
    _run_generator(
        "make_sigs.py", ["--hashes", str(hashes), "--bodies", str(bodies)], out, SIGS_MANIFEST
    )
    return out


def make_corpus(out: Path, *, n: int = 2_000) -> Path:
    """Write ``n`` messages plus ``manifest.json`` (default seed) and return the folder."""
    _run_generator("make_corpus.py", ["--n", str(n)], out, "manifest.json")
    return out


def load_manifest(corpus: Path) -> list[dict[str, Any]]:
    """The corpus manifest: one dict per message (file, size, verdict, signature...)."""
    entries: list[dict[str, Any]] = json.loads((corpus / "manifest.json").read_text())
    return entries


def replace_section(path: Path, mark: str, text: str) -> None:
    """Put ``text`` between ``<!-- mark -->`` and ``<!-- end mark -->`` in ``path``.

    ``text`` carries both markers itself; without them in the file yet, it
    is appended.  The rest of the file is left as it is.
    """
    body = path.read_text() if path.exists() else "# Benchmarks\n"
    start, end = f"<!-- {mark} -->", f"<!-- end {mark} -->"
    if start in body and end in body:
        head, rest = body.split(start, 1)
        _, tail = rest.split(end, 1)
        body = head + text.rstrip("\n") + tail
    else:
        body = body.rstrip("\n") + "\n\n" + text
    path.write_text(body)
