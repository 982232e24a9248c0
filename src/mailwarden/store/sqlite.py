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
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mailwarden.engine.mime.headers import decode_rfc2047, parse_headers
from mailwarden.message import Envelope
from mailwarden.store._migrations import LATEST, MIGRATIONS
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
from mailwarden.verdict import Verdict, display_name

#: Bytes read to find the Subject for listings; headers past this are ignored.
_HEADER_PEEK = 64 * 1024


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
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT version FROM schema_version").fetchone()
            current = int(row[0]) if row else 0
            if current > LATEST:
                raise StoreError(
                    f"the store database has schema version {current}, newer than this "
                    f"mailwarden knows ({LATEST}); upgrade mailwarden"
                )
            for version, statements in MIGRATIONS:
                if version > current:
                    for statement in statements:
                        db.execute(statement)
            if row is None:
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (LATEST,))
            elif current < LATEST:
                db.execute("UPDATE schema_version SET version = ?", (LATEST,))

    # -- quarantine -----------------------------------------------------------------

    def put(self, raw: bytes, envelope: Envelope, verdict: Verdict, reason: str) -> QuarantineId:
        qid = new_id()
        self.spool.write(qid, raw)
        try:
            with self._write() as db:
                db.execute(
                    "INSERT INTO quarantine (id, created, sender, envelope, point, status, "
                    "verdict, reason, size, sha256, subject) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        qid,
                        self._clock(),
                        envelope.sender.lower(),
                        json.dumps(envelope.to_dict()),
                        envelope.point.value,
                        verdict.status.value,
                        json.dumps(verdict.to_dict()),
                        reason,
                        len(raw),
                        hashlib.sha256(raw).hexdigest(),
                        _subject(raw),
                    ),
                )
                db.executemany(
                    "INSERT INTO quarantine_recipient (id, address) VALUES (?, ?)",
                    [(qid, r.lower()) for r in envelope.recipients],
                )
                db.executemany(
                    "INSERT INTO quarantine_finding (id, name) VALUES (?, ?)",
                    [(qid, f.name) for f in verdict.findings],
                )
        except BaseException:
            self.spool.delete(qid)
            raise
        return qid

    def get(self, qid: QuarantineId) -> QuarantineEntry:
        qid = parse_id(qid)
        with self._read() as db:
            row = db.execute(_SELECT + " WHERE id = ?", (qid,)).fetchone()
        if row is None:
            raise UnknownIdError(f"no quarantined message with id {qid}")
        return _entry(row)

    def read(self, qid: QuarantineId) -> bytes:
        self.get(qid)
        return self.spool.read(qid)

    def entries(self, where: QuarantineFilter | None = None) -> list[QuarantineEntry]:
        where = where or QuarantineFilter()
        clauses: list[str] = []
        params: list[Any] = []
        if where.since is not None:
            clauses.append("created >= ?")
            params.append(where.since)
        if where.until is not None:
            clauses.append("created <= ?")
            params.append(where.until)
        if where.sender:
            exact, value = _address_pattern(where.sender)
            clauses.append("sender = ?" if exact else "sender LIKE ? ESCAPE '\\'")
            params.append(value)
        if where.recipient:
            exact, value = _address_pattern(where.recipient)
            clauses.append(_RCPT_EXACT if exact else _RCPT_DOMAIN)
            params.append(value)
        if where.finding:
            clauses.append(
                "id IN (SELECT id FROM quarantine_finding WHERE lower(name) LIKE ? ESCAPE '\\')"
            )
            params.append(f"%{_like(where.finding.lower())}%")
        if where.point:
            clauses.append("point = ?")
            params.append(where.point)
        if where.released is not None:
            clauses.append("released IS NOT NULL" if where.released else "released IS NULL")
        # the SQL text is joined from the fixed fragments above; values go in params
        sql = _SELECT
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY created DESC, id LIMIT ?"
        params.append(max(0, where.limit))
        with self._read() as db:
            return [_entry(row) for row in db.execute(sql, params)]

    def mark_released(self, qid: QuarantineId, recipients: tuple[str, ...]) -> None:
        qid = parse_id(qid)
        with self._write() as db:
            cur = db.execute(
                "UPDATE quarantine SET released = ?, released_to = ? WHERE id = ?",
                (self._clock(), json.dumps(list(recipients)), qid),
            )
        if cur.rowcount == 0:
            raise UnknownIdError(f"no quarantined message with id {qid}")

    def delete(self, qid: QuarantineId) -> None:
        qid = parse_id(qid)
        with self._write() as db:
            cur = db.execute("DELETE FROM quarantine WHERE id = ?", (qid,))
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
        env = event.envelope
        with self._write() as db:
            db.execute(
                "INSERT INTO event (time, queue_id, sender, envelope, direction, point, status, "
                "finding, action, size, quarantine_id, timings) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    event.time,
                    env.queue_id,
                    env.sender.lower(),
                    json.dumps(env.to_dict()),
                    env.direction.value,
                    env.point.value,
                    event.status,
                    event.finding,
                    event.action,
                    event.size,
                    event.quarantine_id,
                    json.dumps(event.timings),
                ),
            )

    def events(
        self, since: float | None = None, until: float | None = None, limit: int = 1000
    ) -> list[ScanEvent]:
        sql = (
            "SELECT time, envelope, status, action, finding, size, quarantine_id, timings "
            "FROM event WHERE time >= ? AND time <= ? ORDER BY time DESC, seq DESC LIMIT ?"
        )
        low = since if since is not None else float("-inf")
        high = until if until is not None else float("inf")
        with self._read() as db:
            rows = db.execute(sql, (low, high, max(0, limit))).fetchall()
        return [
            ScanEvent(
                time=r[0],
                envelope=Envelope.from_dict(json.loads(r[1])),
                status=r[2],
                action=r[3],
                finding=r[4],
                size=r[5],
                quarantine_id=QuarantineId(r[6]) if r[6] else None,
                timings={str(k): float(v) for k, v in json.loads(r[7]).items()},
            )
            for r in rows
        ]

    def purge_events(self, before: float) -> int:
        with self._write() as db:
            return db.execute("DELETE FROM event WHERE time < ?", (before,)).rowcount

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


_SELECT = (
    "SELECT id, created, envelope, verdict, reason, size, sha256, subject, released, "
    "released_to FROM quarantine"
)


def _entry(row: tuple[Any, ...]) -> QuarantineEntry:
    return QuarantineEntry(
        id=QuarantineId(row[0]),
        created=row[1],
        envelope=Envelope.from_dict(json.loads(row[2])),
        verdict=Verdict.from_dict(json.loads(row[3])),
        reason=row[4],
        size=row[5],
        sha256=row[6],
        subject=row[7],
        released=row[8],
        released_to=tuple(json.loads(row[9])) if row[9] else (),
    )


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_RCPT_EXACT = "id IN (SELECT id FROM quarantine_recipient WHERE address = ?)"
_RCPT_DOMAIN = "id IN (SELECT id FROM quarantine_recipient WHERE address LIKE ? ESCAPE '\\')"


def _address_pattern(value: str) -> tuple[bool, str]:
    """An address matches exactly; ``example.org`` or ``@example.org`` matches the domain."""
    text = value.strip().strip("<>").lower()
    if "@" in text.lstrip("@"):
        return True, text
    return False, "%@" + _like(text.lstrip("@"))


def _subject(raw: bytes) -> str:
    head = raw[:_HEADER_PEEK]
    end = min((i for i in (head.find(b"\r\n\r\n"), head.find(b"\n\n")) if i >= 0), default=-1)
    block = head if end < 0 else head[:end]
    for name, value in parse_headers(block):
        if name.lower() == "subject":
            return display_name(decode_rfc2047(value), 300)
    return ""


def _create_private(path: Path) -> None:
    """Create the database file 0600 before SQLite does, so the umask cannot widen it."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        os.close(os.open(path, flags, 0o600))
    except OSError as exc:
        raise StoreError(f"cannot create the store database {path}: {exc}") from exc
