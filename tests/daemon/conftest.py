"""Fixtures for the daemon tests: a running daemon, stopped after each test.

``daemon``          the daemon with the fake backend (see ``fake_backend.py``),
                    2 workers and short timeouts
``start_daemon``    ``start(**settings) -> RunningDaemon`` for other settings,
                    ``real=True`` for mailwarden's engine

SECURITY: test-only; see ``harness.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from daemon.harness import RunningDaemon
from daemon.harness import start_daemon as _start


@pytest.fixture
def start_daemon() -> Iterator[Callable[..., RunningDaemon]]:
    started: list[RunningDaemon] = []

    def start(**kwargs: Any) -> RunningDaemon:
        d = _start(**kwargs)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


@pytest.fixture
def daemon(start_daemon: Callable[..., RunningDaemon]) -> RunningDaemon:
    return start_daemon()
