"""SQLite store: round trips, filters, permissions, migrations, several processes."""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from mailwarden.message import Direction, Envelope, Point
from mailwarden.store import (
    MalformedIdError,
    QuarantineFilter,
    QuarantineId,
    ScanEvent,
    SqliteStore,
    StoreError,
    UnknownIdError,
    parse_id,
)
from mailwarden.verdict import Finding, Status, Verdict

RAW = b"From: a@x.example\r\nSubject: =?utf-8?q?R=C3=A9sum=C3=A9?=\r\n\r\nbody\r\n"
EICAR = Verdict(Status.INFECTED, (Finding("Eicar-Test-Signature", "1/e.com", "clamav"),))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> SqliteStore:
    return SqliteStore(tmp_path / "db" / "store.sqlite3", tmp_path / "spool", clock=clock)


def env(sender: str = "a@x.example", *rcpts: str, point: Point = Point.MTA) -> Envelope:
    return Envelope(
        sender, rcpts or ("bob@local.example",), client_address="203.0.113.5", point=point
    )


def test_put_get_read_round_trip(store: SqliteStore) -> None:
    qid = store.put(RAW, env(), EICAR, "policy.infected")
    assert parse_id(qid) == qid
    entry = store.get(qid)
    assert store.read(qid) == RAW
    assert entry.envelope == env() and entry.verdict == EICAR
    assert entry.reason == "policy.infected" and entry.size == len(RAW)
    assert entry.subject == "Résumé"
    assert entry.released is None


def test_files_and_folders_are_private(store: SqliteStore, tmp_path: Path) -> None:
    qid = store.put(RAW, env(), EICAR, "r")
    path = store.spool.path(qid)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "spool").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "db" / "store.sqlite3").stat().st_mode) == 0o600
    # the file is named by our id only, whatever the subject says
    assert path.name == f"{qid}.eml"


def test_open_spool_is_refused(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o755)
    os.chmod(spool, 0o755)  # noqa: S103 - the insecure folder under test
    with pytest.raises(StoreError, match="chmod 700"):
        SqliteStore(tmp_path / "s.db", spool)
    os.chmod(spool, 0o700)
    link = tmp_path / "link"
    link.symlink_to(spool)
    with pytest.raises(StoreError, match="not a plain folder"):
        SqliteStore(tmp_path / "s.db", link)


@pytest.mark.parametrize(
    "bad", ["", "../../etc/passwd", "ABCDEF", "0" * 31, "g" * 32, "0" * 32 + "/"]
)
def test_malformed_ids_are_refused_before_any_lookup(store: SqliteStore, bad: str) -> None:
    with pytest.raises(MalformedIdError):
        store.get(QuarantineId(bad))
    with pytest.raises(MalformedIdError):
        store.spool.path(QuarantineId(bad))


def test_unknown_id(store: SqliteStore) -> None:
    missing = QuarantineId("0" * 32)
    for call in (store.get, store.read, store.delete):
        with pytest.raises(UnknownIdError):
            call(missing)
    with pytest.raises(UnknownIdError):
        store.mark_released(missing, ())


def test_filters(store: SqliteStore, clock: Clock) -> None:
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
    assert ids(finding="eicar") == [first]
    assert ids(finding="1_%") == [second] and ids(finding="_") == [second]
    assert ids(point="S2") == [second]
    assert ids(since=1_000_050.0) == [second] and ids(until=1_000_050.0) == [first]
    assert ids(released=True) == [first] and ids(released=False) == [second]
    assert ids(limit=1) == [second]
    assert ids(sender="' OR 1=1 --") == []
    entry = store.get(first)
    assert entry.released == 1_000_200.0 and entry.released_to == ("bob@local.example",)


def test_delete_and_purge_remove_rows_and_files(store: SqliteStore, clock: Clock) -> None:
    old = store.put(RAW, env(), EICAR, "r")
    clock.now += 1000
    new = store.put(RAW, env(), EICAR, "r")
    assert store.purge(before=clock.now - 1) == 1
    assert not store.spool.path(old).exists()
    with pytest.raises(UnknownIdError):
        store.get(old)
    store.delete(new)
    assert not store.spool.path(new).exists()
    assert store.entries() == []


def test_failed_insert_leaves_no_file(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mailwarden.store.sqlite.new_id", lambda: QuarantineId("a" * 32))
    store.put(RAW, env(), EICAR, "r")
    store.spool.delete(QuarantineId("a" * 32))
    # same id again: the spool write succeeds, the primary key refuses the row
    with pytest.raises(StoreError):
        store.put(RAW, env(), EICAR, "r")
    assert not store.spool.path(QuarantineId("a" * 32)).exists()


def test_events_round_trip_and_purge(store: SqliteStore) -> None:
    e1 = ScanEvent(10.0, env(), "clean", "accept", timings={"scan": 0.01})
    e2 = ScanEvent(
        20.0,
        Envelope("s@x.example", ("r@y.example",), direction=Direction.OUTBOUND, queue_id="4ABC"),
        "infected",
        "reject",
        "Eicar-Test-Signature",
        68,
    )
    store.record_event(e1)
    store.record_event(e2)
    assert store.events() == [e2, e1]
    assert store.events(since=15.0) == [e2]
    assert store.purge_events(before=15.0) == 1
    assert store.events() == [e2]


def test_schema_is_versioned_and_reopening_does_not_migrate_again(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    first = SqliteStore(db, tmp_path / "spool")
    first.record_event(ScanEvent(1.0, env(), "clean", "accept"))
    first.close()
    again = SqliteStore(db, tmp_path / "spool")
    assert again.schema_version() == 1
    assert len(again.events()) == 1
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        SqliteStore(db, tmp_path / "spool")


def _writer(db: str, spool: str, n: int) -> None:
    store = SqliteStore(Path(db), Path(spool))
    for i in range(n):
        store.put(RAW, env(f"p{os.getpid()}-{i}@x.example"), EICAR, "r")
        store.record_event(ScanEvent(float(i), env(), "infected", "quarantine"))
    store.close()


def test_several_processes_write_at_once(tmp_path: Path) -> None:
    db, spool = str(tmp_path / "s.db"), str(tmp_path / "spool")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(db, spool, 25)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = SqliteStore(Path(db), Path(spool))
    entries = store.entries(QuarantineFilter(limit=1000))
    assert len(entries) == 100 and len({e.id for e in entries}) == 100
    assert len(store.events()) == 100
    assert all(store.read(e.id) == RAW for e in entries)


def test_entry_to_dict_is_json(store: SqliteStore) -> None:
    qid = store.put(RAW, env(), EICAR, "r")
    data = json.loads(json.dumps(store.get(qid).to_dict()))
    assert data["id"] == qid and data["verdict"]["findings"][0]["name"] == "Eicar-Test-Signature"
