"""SQLite store: file modes, the spool beside the database, WAL, schema refusal.

The contract every backend keeps is in ``test_base.py``."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from mailwarden.message import Envelope, Point
from mailwarden.store import (
    MalformedIdError,
    QuarantineId,
    ScanEvent,
    SqliteStore,
    StoreError,
)
from mailwarden.verdict import Finding, Status, Verdict
from store.conftest import Clock

RAW = b"From: a@x.example\r\nSubject: =?utf-8?q?R=C3=A9sum=C3=A9?=\r\n\r\nbody\r\n"
EICAR = Verdict(Status.INFECTED, (Finding("Eicar-Test-Signature", "1/e.com", "clamav"),))


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> SqliteStore:
    return SqliteStore(tmp_path / "db" / "store.sqlite3", tmp_path / "spool", clock=clock)


def env(sender: str = "a@x.example", *rcpts: str, point: Point = Point.MTA) -> Envelope:
    return Envelope(
        sender, rcpts or ("bob@local.example",), client_address="203.0.113.5", point=point
    )


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
def test_malformed_ids_never_name_a_spool_file(store: SqliteStore, bad: str) -> None:
    with pytest.raises(MalformedIdError):
        store.spool.path(QuarantineId(bad))


def test_delete_and_purge_remove_the_files(store: SqliteStore, clock: Clock) -> None:
    old = store.put(RAW, env(), EICAR, "r")
    clock.now += 1000
    new = store.put(RAW, env(), EICAR, "r")
    assert store.purge(before=clock.now - 1) == 1
    assert not store.spool.path(old).exists() and store.spool.path(new).exists()
    store.delete(new)
    assert not store.spool.path(new).exists()


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
