"""The store contract, run on every backend: round trips, ids, filters, purge, history,
schema versions and several writers at once."""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from mailwarden.message import Direction, Envelope, Point
from mailwarden.store import (
    MalformedIdError,
    QuarantineFilter,
    QuarantineId,
    QuarantineStore,
    ScanEvent,
    UnknownIdError,
    parse_id,
)
from mailwarden.store._migrations import LATEST
from mailwarden.verdict import Finding, Status, Verdict
from store.conftest import Backend, Clock, open_backend

RAW = b"From: a@x.example\r\nSubject: =?utf-8?q?R=C3=A9sum=C3=A9?=\r\n\r\nbody\r\n"
EICAR = Verdict(Status.INFECTED, (Finding("Eicar-Test-Signature", "1/e.com", "clamav"),))


def env(sender: str = "a@x.example", *rcpts: str, point: Point = Point.MTA) -> Envelope:
    return Envelope(
        sender, rcpts or ("bob@local.example",), client_address="203.0.113.5", point=point
    )


def test_put_get_read_round_trip(store: QuarantineStore) -> None:
    qid = store.put(RAW, env(), EICAR, "policy.infected")
    assert parse_id(qid) == qid
    entry = store.get(qid)
    assert store.read(qid) == RAW
    assert entry.envelope == env() and entry.verdict == EICAR
    assert entry.reason == "policy.infected" and entry.size == len(RAW)
    assert entry.subject == "Résumé"
    assert entry.released is None


def test_every_byte_value_survives(store: QuarantineStore) -> None:
    raw = bytes(range(256)) * 64 + b"\r\n.\r\n\x00"
    qid = store.put(raw, env(), EICAR, "r")
    assert store.read(qid) == raw and store.get(qid).size == len(raw)


@pytest.mark.parametrize(
    "bad", ["", "../../etc/passwd", "ABCDEF", "0" * 31, "g" * 32, "0" * 32 + "/"]
)
def test_malformed_ids_are_refused_before_any_lookup(store: QuarantineStore, bad: str) -> None:
    for call in (store.get, store.read, store.delete):
        with pytest.raises(MalformedIdError):
            call(QuarantineId(bad))


def test_unknown_id(store: QuarantineStore) -> None:
    missing = QuarantineId("0" * 32)
    for call in (store.get, store.read, store.delete):
        with pytest.raises(UnknownIdError):
            call(missing)
    with pytest.raises(UnknownIdError):
        store.mark_released(missing, ())


def test_filters(store: QuarantineStore, clock: Clock) -> None:
    first = store.put(RAW, env("Eve@Evil.example", "bob@local.example"), EICAR, "r")
    clock.now += 100
    trojan = Verdict(Status.INFECTED, (Finding("Win.Trojan.Agent-1_%", "", "clamav"),))
    second = store.put(
        RAW, env("carol@x.example", "ann@other.example", point=Point.MDA), trojan, "r"
    )
    clock.now += 100
    store.mark_released(first, ("bob@local.example",))

    def ids(**kw: object) -> list[str]:
        return [e.id for e in store.entries(QuarantineFilter(**kw))]  # type: ignore[arg-type]

    assert ids() == [second, first]
    assert ids(sender="eve@evil.example") == [first]
    assert ids(sender="evil.example") == [first] == ids(sender="@EVIL.example")
    assert ids(recipient="ann@other.example") == [second]
    assert ids(recipient="local.example") == [first]
    assert ids(recipient="ocal.example") == []  # a domain is matched whole
    assert ids(finding="eicar") == [first]
    assert ids(finding="1_%") == [second] and ids(finding="_") == [second]
    assert ids(point="S2") == [second] and ids(point="S1") == [first]
    assert ids(since=1_000_050.0) == [second] and ids(until=1_000_050.0) == [first]
    assert ids(since=1_000_100.0, until=1_000_100.0) == [second]  # inclusive
    assert ids(released=True) == [first] and ids(released=False) == [second]
    assert ids(limit=1) == [second]
    assert ids(sender="evil.example", finding="trojan") == []  # filters combine
    assert ids(sender="' OR 1=1 --") == []
    entry = store.get(first)
    assert entry.released == 1_000_200.0 and entry.released_to == ("bob@local.example",)


def test_delete_and_purge(store: QuarantineStore, clock: Clock) -> None:
    old = store.put(RAW, env(), EICAR, "r")
    clock.now += 1000
    new = store.put(RAW, env(), EICAR, "r")
    assert store.purge(before=clock.now - 1) == 1
    for call in (store.get, store.read):
        with pytest.raises(UnknownIdError):
            call(old)
    assert store.read(new) == RAW
    store.delete(new)
    with pytest.raises(UnknownIdError):
        store.read(new)
    assert store.entries() == []
    assert store.entries(QuarantineFilter(recipient="bob@local.example")) == []


def test_events_round_trip_and_purge(store: QuarantineStore) -> None:
    e1 = ScanEvent(10.0, env(), "clean", "accept", timings={"scan": 0.01})
    e2 = ScanEvent(
        20.0,
        Envelope("s@x.example", ("r@y.example",), direction=Direction.OUTBOUND, queue_id="4ABC"),
        "infected",
        "reject",
        "Eicar-Test-Signature",
        68,
        QuarantineId("a" * 32),
    )
    store.record_event(e1)
    store.record_event(e2)
    assert store.events() == [e2, e1]
    assert store.events(since=15.0) == [e2] and store.events(until=15.0) == [e1]
    assert store.events(limit=1) == [e2]
    assert store.purge_events(before=15.0) == 1
    assert store.events() == [e2]


def test_schema_is_versioned_and_reopening_does_not_migrate_again(backend: Backend) -> None:
    first = backend.open()
    first.record_event(ScanEvent(1.0, env(), "clean", "accept"))
    assert first.schema_version() == LATEST
    first.close()
    again = backend.open()
    assert again.schema_version() == LATEST
    assert len(again.events()) == 1
    again.ping()
    again.close()


def _writer(spec: tuple[str, ...], n: int) -> None:
    store = open_backend(spec)
    for i in range(n):
        store.put(RAW, env(f"p{os.getpid()}-{i}@x.example"), EICAR, "r")
        store.record_event(ScanEvent(float(i), env(), "infected", "quarantine"))
    store.close()


def test_several_processes_write_at_once(backend: Backend) -> None:
    # a fresh store: the processes also race to create the schema
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(backend.spec, 25)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = backend.open()
    entries = store.entries(QuarantineFilter(limit=1000))
    assert len(entries) == 100 and len({e.id for e in entries}) == 100
    assert len(store.events()) == 100
    assert all(store.read(e.id) == RAW for e in entries)
    assert store.schema_version() == LATEST


def test_entry_to_dict_is_json(store: QuarantineStore) -> None:
    qid = store.put(RAW, env(), EICAR, "r")
    data = json.loads(json.dumps(store.get(qid).to_dict()))
    assert data["id"] == qid and data["verdict"]["findings"][0]["name"] == "Eicar-Test-Signature"
