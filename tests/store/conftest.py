"""Fixtures of the store tests: every contract test runs on SQLite and on PostgreSQL.

``backend`` opens handles on one fresh store (a temporary SQLite file and
spool, or a new database in the session's private PostgreSQL cluster), so a
test can open a second handle as a second process or node would; ``store``
is the first handle, on the test's ``clock``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailwarden.store import QuarantineStore, SqliteStore
from mailwarden.store.postgres import PostgresStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Backend:
    name: str
    #: picklable arguments for :func:`open_backend` (for spawned processes)
    spec: tuple[str, ...]

    def open(self, clock: Callable[[], float] | None = None) -> QuarantineStore:
        return open_backend(self.spec, clock)


def open_backend(
    spec: tuple[str, ...], clock: Callable[[], float] | None = None
) -> QuarantineStore:
    kind, first, second = spec
    extra = {"clock": clock} if clock is not None else {}
    if kind == "sqlite":
        return SqliteStore(Path(first), Path(second), **extra)
    return PostgresStore(first, password_file=Path(second), **extra)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend(
            "sqlite", ("sqlite", str(tmp_path / "db" / "s.sqlite3"), str(tmp_path / "spool"))
        )
    cluster = request.getfixturevalue("postgres")
    return Backend(
        "postgresql", ("postgresql", cluster.create_database(), str(cluster.password_file))
    )


@pytest.fixture
def store(backend: Backend, clock: Clock) -> Iterator[QuarantineStore]:
    handle = backend.open(clock)
    yield handle
    handle.close()
