"""atheris harness: any file through the configuration loader.

Run by hand::

    mkdir -p fuzz-work
    .venv/bin/python tests/fuzz/atheris/config_load.py -runs=100000 \\
        fuzz-work tests/fuzz/corpus/config

libFuzzer adds new inputs to the first folder given: pass a scratch folder
before the corpus, never the corpus alone.

Property: a Config or a ConfigError naming the file; anything else is a crash.

SECURITY: test-only; writes one temporary file.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from mailwarden.config import load_config
    from mailwarden.errors import ConfigError

FILE = Path(tempfile.mkdtemp(prefix="mw-atheris-")) / "mailwarden.toml"


def one_input(data: bytes) -> None:
    FILE.write_bytes(data)
    try:
        load_config(FILE)
    except ConfigError as exc:
        if exc.file != str(FILE):
            raise AssertionError(exc) from exc


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
