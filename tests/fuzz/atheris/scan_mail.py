"""atheris harness: any bytes through the engine as mail (the daemon's view).

Run by hand, not by pytest (coverage-guided fuzzing runs until stopped)::

    mkdir -p fuzz-work
    .venv/bin/python tests/fuzz/atheris/scan_mail.py -runs=200000 -max_len=65536 \\
        fuzz-work tests/fuzz/corpus/mime

libFuzzer options go on the command line (``-runs``, ``-max_total_time``,
``-max_len``); a corpus folder seeds it (the regression corpus is a good
start).  libFuzzer adds what it finds to the *first* folder: give it a
scratch folder first and the corpus after it.  A crash writes
``crash-<sha1>`` in the current folder: copy it into ``tests/fuzz/corpus/mime``
with its expected verdict.

Property checked: a verdict whose status is not ``error`` and whose size is
the input's; any exception is a crash.

SECURITY: test-only; reads nothing but its corpus.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from mailwarden.engine import Engine, EngineSettings
    from mailwarden.verdict import Status

ENGINE = Engine.load(EngineSettings(bundled=True, cache_dir=None))


def one_input(data: bytes) -> None:
    verdict = ENGINE.scan_bytes(data)
    if verdict.status is Status.ERROR or verdict.size != len(data):
        raise AssertionError(f"bad verdict {verdict}")


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
