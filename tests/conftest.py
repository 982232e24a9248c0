"""Fixtures shared by the whole test suite.

Keep this file small: each fixture here is a thin wrapper over a helper in
``tests/support/``, where the logic lives and can be reused by ``bench/``.
Importing this file puts the ``tests`` folder on ``sys.path`` (pytest's default
``prepend`` import mode), so tests write ``from support.clamd import ...``.

Fixtures:
  ``clamd_factory``  start Debian's clamd on a signature folder; stopped at the
                     end of the session.  Skips when clamd is missing, fails
                     under ``CI=true``.
  ``postgres``       a private PostgreSQL cluster for the session
                     (``support.postgres``); ``postgres.create_database()``
                     gives each test an empty database.  Same skip/fail rule.

SECURITY: test-only; every process started here is stopped by its PID.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.clamd import ClamdFactory, ClamdHandle, find_clamd, start_clamd
from support.postgres import Cluster, private_cluster
from support.tools import missing


@pytest.fixture(scope="session")
def clamd_factory() -> Iterator[ClamdFactory]:
    """Return ``start(database_dir, *, tcp_port=None) -> ClamdHandle``."""
    started: list[ClamdHandle] = []

    def start(database_dir: Path, *, tcp_port: int | None = None) -> ClamdHandle:
        binary = find_clamd()
        if binary is None:
            missing("clamd is not installed (apt-get install clamav-daemon)")
        handle = start_clamd(database_dir, binary=binary, tcp_port=tcp_port)
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    with private_cluster() as cluster:
        yield cluster
