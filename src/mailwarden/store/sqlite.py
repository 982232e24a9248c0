"""SQLite store: quarantine metadata and event history in one database file,
message bytes in a :class:`~mailwarden.store.spool.Spool`.

Usage::

    store = SqliteStore(Path(db), Path(spool_dir))
    qid = store.put(raw, envelope, verdict, "policy.infected")

Several processes (the agents, the CLI, the web UI) open the same database:
WAL journal so readers never block the writer, a busy timeout instead of
"database is locked" errors, and BEGIN IMMEDIATE for every write so two
writers queue rather than deadlock.  Migrations run under the same lock, so
two processes starting together migrate once.

Order of work: ``put`` writes the spool file before the row and removes it if
the row fails; ``delete`` removes the row before the file.  A crash leaves at
worst an orphan file, never a row without its message.

SECURITY: every statement is fixed text with ``?`` parameters; values from
mail never become SQL.  The database file is created 0600 (SQLite gives its
-wal and -shm files the same mode).  Needs write access to the database's
folder and the spool.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from mailwarden.message import Envelope
from mailwarden.store import _rows
from mailwarden.store._migrations import SQLITE, upgrade
from mailwarden.store.base import (
    QuarantineEntry,
    QuarantineFilter,
    QuarantineId,
    ScanEvent,
    StoreError,
    UnknownIdError,
    new_id,
    parse_id,
)
from mailwarden.store.spool import Spool, secure_dir
from mailwarden.verdict import Verdict


class SqliteStore:
    """:class:`~mailwarden.store.base.QuarantineStore` on SQLite and a spool folder."""

    def __init__(
        self,
        database: Path,
        spool_dir: Path,
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 30.0,
    ) -> None:
        self.spool = Spool(spool_dir)
        self._clock = clock
        self._lock = threading.Lock()
        if not database.parent.exists():
            secure_dir(database.parent)
        _create_private(database)
        try:
            self._db = sqlite3.connect(
                database, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store database {database}: {exc}") from exc

    # -- schema ---------------------------------------------------------------------

    def schema_version(self) -> int:
        with self._read() as db:
            row = db.execute("SELECT version FROM schema_version").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        with self._write() as db:
            upgrade(db, SQLITE, "?")

    def ping(self) -> None:
        """Raise :class:`StoreError` unless the database answers."""
        with self._read() as db:
            db.execute("SELECT 1").fetchone()

    # -- quarantine -----------------------------------------------------------------

    def put(self, raw: bytes, envelope: Envelope, verdict: Verdict, reason: str) -> QuarantineId:
        qid = new_id()
        self.spool.write(qid, raw)
        values = _rows.quarantine_values(qid, self._clock(), raw, envelope, verdict, reason)
        try:
            with self._write() as db:
                db.execute(_rows.INSERT_QUARANTINE, values)
                db.executemany(_rows.INSERT_RECIPIENT, _rows.recipient_rows(qid, envelope))
                db.executemany(_rows.INSERT_FINDING, _rows.finding_rows(qid, verdict))
        except BaseException:
            self.spool.delete(qid)
            raise
        return qid

    def get(self, qid: QuarantineId) -> QuarantineEntry:
        qid = parse_id(qid)
        with self._read() as db:
            row = db.execute(_rows.SELECT_ENTRY + " WHERE id = ?", (qid,)).fetchone()
        if row is None:
            raise UnknownIdError(f"no quarantined message with id {qid}")
        return _rows.entry(row)

    def read(self, qid: QuarantineId) -> bytes:
        self.get(qid)
        return self.spool.read(qid)

    def entries(self, where: QuarantineFilter | None = None) -> list[QuarantineEntry]:
        sql, params = _rows.filter_sql(where or QuarantineFilter())
        with self._read() as db:
            return [_rows.entry(row) for row in db.execute(_rows.SELECT_ENTRY + sql, params)]

    def mark_released(self, qid: QuarantineId, recipients: tuple[str, ...]) -> None:
        qid = parse_id(qid)
        with self._write() as db:
            cur = db.execute(_rows.MARK_RELEASED, (self._clock(), _rows.json_list(recipients), qid))
        if cur.rowcount == 0:
            raise UnknownIdError(f"no quarantined message with id {qid}")

    def delete(self, qid: QuarantineId) -> None:
        qid = parse_id(qid)
        with self._write() as db:
            cur = db.execute(_rows.DELETE_ENTRY, (qid,))
        if cur.rowcount == 0:
            raise UnknownIdError(f"no quarantined message with id {qid}")
        self.spool.delete(qid)

    def purge(self, before: float) -> int:
        with self._write() as db:
            ids = [
                r[0] for r in db.execute("SELECT id FROM quarantine WHERE created < ?", (before,))
            ]
            db.execute("DELETE FROM quarantine WHERE created < ?", (before,))
        for qid in ids:
            self.spool.delete(QuarantineId(qid))
        return len(ids)

    # -- history --------------------------------------------------------------------

    def record_event(self, event: ScanEvent) -> None:
        with self._write() as db:
            db.execute(_rows.INSERT_EVENT, _rows.event_values(event))

    def events(
        self, since: float | None = None, until: float | None = None, limit: int = 1000
    ) -> list[ScanEvent]:
        low = since if since is not None else float("-inf")
        high = until if until is not None else float("inf")
        with self._read() as db:
            rows = db.execute(_rows.SELECT_EVENTS, (low, high, max(0, limit))).fetchall()
        return [_rows.event(r) for r in rows]

    def purge_events(self, before: float) -> int:
        with self._write() as db:
            return db.execute(_rows.PURGE_EVENTS, (before,)).rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- plumbing -------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"store database error: {exc}") from exc

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise StoreError(f"store database error: {exc}") from exc


def _create_private(path: Path) -> None:
    """Create the database file 0600 before SQLite does, so the umask cannot widen it."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        os.close(os.open(path, flags, 0o600))
    except OSError as exc:
        raise StoreError(f"cannot create the store database {path}: {exc}") from exc
