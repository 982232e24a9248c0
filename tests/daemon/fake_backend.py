"""A scanner whose speed and failures tests control, loaded through the daemon's
backend seam (``DaemonSettings.backend_factory = "daemon.fake_backend:load"``).

The daemon's loader is a fresh interpreter, so this module is imported there
by name: the harness puts the ``tests`` folder on ``PYTHONPATH``.  Markers in
the scanned bytes choose the behaviour:

  ``EICAR``            infected, ``Fake.Eicar`` (official)
  ``UNOFFICIAL``       infected, ``Fake.Unofficial`` from an unsigned database
  ``HEURISTIC``        suspicious, ``Heuristics.Fake.DoubleExtension``
  ``UNSCANNED``        unscanned, reason ``encrypted archive in 1/a.zip``
  ``SLEEP:<seconds>``  sleeps first (a slow or hanging scan)
  ``CRASH``            the worker process dies

SECURITY: test-only code.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from mailwarden.verdict import Category, Finding, Status, Verdict

VERSION = "fake-1"
_SLEEP = re.compile(rb"SLEEP:(\d+(?:\.\d+)?)")


class FakeBackend:
    version = VERSION
    signature_count = 4

    def scan(self, data: Any, *, all_matches: bool) -> Verdict:
        raw = bytes(data)
        sleep = _SLEEP.search(raw)
        if sleep:
            time.sleep(float(sleep.group(1)))
        if b"CRASH" in raw:
            os._exit(3)
        findings: list[Finding] = []
        if b"EICAR" in raw:
            findings.append(Finding("Fake.Eicar", "1/eicar.com", "clamav"))
        if b"UNOFFICIAL" in raw:
            findings.append(Finding("Fake.Unofficial", "", "clamav", official=False))
        if b"HEURISTIC" in raw:
            findings.append(
                Finding(
                    "Heuristics.Fake.DoubleExtension",
                    "2/a.pdf.exe",
                    "heuristics",
                    Category.SUSPICIOUS,
                )
            )
        if not all_matches:
            findings = findings[:1]
        if any(f.category is Category.INFECTED for f in findings):
            status = Status.INFECTED
        elif findings:
            status = Status.SUSPICIOUS
        elif b"UNSCANNED" in raw:
            return Verdict(Status.UNSCANNED, reason="encrypted archive in 1/a.zip", size=len(raw))
        else:
            status = Status.CLEAN
        return Verdict(status, tuple(findings), size=len(raw), timings={"scan": 0.0})


def load(settings: Any) -> FakeBackend:
    return FakeBackend()


def load_broken(settings: Any) -> FakeBackend:
    raise RuntimeError("signature file damaged on purpose")
