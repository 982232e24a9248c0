"""Retention: what a purge removes, and serve's periodic purge driven without waiting."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from mailwarden.config import defaults
from mailwarden.message import Envelope
from mailwarden.store import QuarantineStore, ScanEvent, SqliteStore, StoreError
from mailwarden.store.retention import keep_purging, purge_expired
from mailwarden.verdict import Finding, Status, Verdict
from serve.harness import base_toml, start_serve
from store.conftest import Backend, Clock

DAY = 86400.0
EICAR = Verdict(Status.INFECTED, (Finding("Eicar-Test-Signature", "", "clamav"),))
SECTION = {**defaults()["store"], "retention_days": 30, "event_retention_days": 90}


def _fill(store: QuarantineStore, clock: Clock) -> None:
    """Entries and events 100, 60 and 10 days old."""
    start = clock.now
    for age in (100, 60, 10):
        clock.now = start - age * DAY
        store.put(b"Subject: x\r\n\r\nbody\r\n", Envelope(), EICAR, "r")
        store.record_event(ScanEvent(clock.now, Envelope(), "clean", "accept"))
    clock.now = start


def test_purge_keeps_what_is_younger_than_each_period(store: QuarantineStore, clock: Clock) -> None:
    _fill(store, clock)
    purged = purge_expired(store, SECTION, now=clock.now)
    assert (purged.messages, purged.events) == (2, 1)
    assert len(store.entries()) == 1 and len(store.events()) == 2
    assert purge_expired(store, SECTION, now=clock.now) == type(purged)(0, 0)


class Rounds:
    """A sleep that lets ``n`` rounds run, advancing the clock by each interval."""

    def __init__(self, clock: Clock, n: int) -> None:
        self.clock, self.left, self.waits = clock, n, []  # type: list[float]

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.left -= 1
        if self.left == 0:
            raise asyncio.CancelledError
        self.clock.now += seconds


def test_serve_purges_at_start_and_every_interval(backend: Backend, clock: Clock) -> None:
    store = backend.open(clock)
    _fill(store, clock)
    section = {**SECTION, "purge_interval": 3600}
    rounds = Rounds(clock, 3)
    opened: list[QuarantineStore] = []

    def open_store() -> QuarantineStore:
        opened.append(backend.open(clock))
        return opened[-1]

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(keep_purging(open_store, section, clock=clock, sleep=rounds))
    assert rounds.waits == [3600.0, 3600.0, 3600.0] and len(opened) == 3
    # the first round purged the 100- and 60-day-old entries and the 100-day-old event
    assert len(store.entries()) == 1 and len(store.events()) == 2
    # two hours later nothing else had expired; thirty days later the last entry has
    clock.now += 30 * DAY
    asyncio.run(_one_more(open_store, section, clock))
    assert store.entries() == [] and len(store.events()) == 1


async def _one_more(open_store: object, section: dict[str, object], clock: Clock) -> None:
    rounds = Rounds(clock, 1)
    with pytest.raises(asyncio.CancelledError):
        await keep_purging(open_store, section, clock=clock, sleep=rounds)  # type: ignore[arg-type]


def test_a_store_that_is_down_skips_a_round_and_the_next_one_purges(
    backend: Backend, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    store = backend.open(clock)
    _fill(store, clock)
    calls = 0

    def open_store() -> QuarantineStore:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise StoreError("PostgreSQL server db port 5432: connection refused")
        return backend.open(clock)

    with caplog.at_level(logging.WARNING), pytest.raises(asyncio.CancelledError):
        asyncio.run(
            keep_purging(
                open_store, {**SECTION, "purge_interval": 60}, clock=clock, sleep=Rounds(clock, 2)
            )
        )
    assert "purge skipped this round" in caplog.text and "connection refused" in caplog.text
    assert calls == 2 and len(store.entries()) == 1


def test_an_interval_of_zero_leaves_purging_to_a_timer(store: QuarantineStore) -> None:
    def never() -> QuarantineStore:
        raise AssertionError("opened the store")

    asyncio.run(keep_purging(never, {**SECTION, "purge_interval": 0}))


def test_mailwarden_serve_purges_by_itself() -> None:
    folder = Path(tempfile.mkdtemp(prefix="mwr-"))  # short: unix socket paths
    try:
        clock = Clock()
        clock.now = time.time()
        store = SqliteStore(folder / "store" / "db.sqlite3", folder / "store" / "quarantine")
        aged = SqliteStore(
            folder / "store" / "db.sqlite3", folder / "store" / "quarantine", clock=clock
        )
        _fill(aged, clock)
        aged.close()
        run = start_serve(folder, base_toml(folder))
        try:
            run.wait_for(r"retention: purged 2 quarantined messages and 1 history events")
            assert len(store.entries()) == 1 and len(store.events()) == 2
            assert run.stop() == 0
        finally:
            run.kill_everything()
        store.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
