"""Scan one file with the default engine under an address-space limit; print the verdict.

Run by ``test_bombs.py`` in a child interpreter::

    python bombscan.py FILE HEADROOM_BYTES

The engine is loaded first (its signatures, Hyperscan and YARA map what they
map), then ``RLIMIT_AS`` is set to the address space in use plus
``HEADROOM_BYTES``.  Every allocation past that, in Python or in C (zlib, lzma,
bz2, py7zr), fails; a bomb that is not bounded ends in MemoryError and a
non-zero exit instead of a verdict.  Prints one JSON line:
``{"status": ..., "reason": ..., "findings": [...], "peak_rss_kib": ...}``.

SECURITY: test-only; reads the file it is given.
"""

from __future__ import annotations

import json
import resource
import sys

from mailwarden.engine import Engine, EngineSettings


def _status_bytes(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def main(path: str, headroom: int) -> None:
    engine = Engine.load(EngineSettings(bundled=True, cache_dir=None))
    with open(path, "rb") as fh:
        data = fh.read()
    limit = _status_bytes("VmSize") + headroom
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    verdict = engine.scan_bytes(data)
    print(
        json.dumps(
            {
                "status": verdict.status.value,
                "reason": verdict.reason,
                "findings": [f.name for f in verdict.findings],
                # VmHWM, not ru_maxrss: that one keeps the parent's peak across exec
                "peak_rss_kib": _status_bytes("VmHWM") // 1024,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
