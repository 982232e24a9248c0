"""Fixtures for the supervisor tests.

``start_serve``   ``start(overrides=None, *args) -> ServeRun``: writes the test
                  configuration (``harness.base_toml`` with ``overrides``, section
                  -> key -> value) in a fresh short folder and starts
                  ``mailwarden serve`` on it; at the end every process it
                  started is stopped.
``serve_folder``  that folder, for tests that add files before starting.

SECURITY: test-only; see ``harness.py``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from serve.harness import ServeRun, base_toml
from serve.harness import start_serve as _start


@pytest.fixture
def serve_folder() -> Iterator[Path]:
    # unix socket paths are limited to 107 bytes: keep the folder short
    folder = Path(tempfile.mkdtemp(prefix="mws-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def start_serve(serve_folder: Path) -> Iterator[Callable[..., ServeRun]]:
    runs: list[ServeRun] = []

    def start(overrides: dict[str, dict[str, Any]] | None = None, *args: str) -> ServeRun:
        run = _start(serve_folder, base_toml(serve_folder, overrides), *args)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.kill_everything()
