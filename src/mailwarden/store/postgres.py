"""PostgreSQL store: quarantine entries, message bytes and history in one database
that several gateway nodes share.

Usage (``open_store`` does this for ``[store] backend = "postgresql"``)::

    store = PostgresStore("host=db.example.org dbname=mailwarden user=mailwarden",
                          password_file=Path("/etc/mailwarden/pgpass"))
    qid = store.put(raw, envelope, verdict, "policy.infected")

The message bytes are a ``bytea`` column of the entry's row, written in the
same transaction as its metadata: every node sees every quarantined message,
and a put either stores both or neither (docs/quarantine.md says why).

Connections: one per store object, opened on first use (so an agent starts
while the database is down and defers mail until it is back), guarded by a
lock like the SQLite backend's.  A connection found broken when a
transaction starts is replaced and the transaction run once more; a failure
while committing is never retried, because the commit may have happened.
After a failed connection attempt, calls fail at once for a second (doubled
after each failure in a row, up to 30) instead of each waiting for
``connect_timeout``, so an unreachable server does not hold up an agent's
event loop, where the history row of a clean message is written.  Migrations
run on the first connection inside a transaction holding an advisory lock,
so nodes starting together migrate once.

SECURITY: every statement is fixed text with parameters.  The password comes
from ``password_file`` (refused when others may read it) or from libpq's own
sources (``PGPASSWORD``, ``PGPASSFILE``, ``~/.pgpass``); it is never put in an
error message or a log line: errors name the server by host, port, database
and user only.  Needs a role that owns the database (or may create tables
in it) for the migrations, then SELECT/INSERT/UPDATE/DELETE.
"""

from __future__ import annotations

import os
import re
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from mailwarden.message import Envelope
from mailwarden.store import _rows
from mailwarden.store._migrations import LATEST, POSTGRESQL, upgrade
from mailwarden.store.base import (
    QuarantineEntry,
    QuarantineFilter,
    QuarantineId,
    ScanEvent,
    StoreError,
    StoreUnavailableError,
    UnknownIdError,
    new_id,
    parse_id,
)
from mailwarden.verdict import Verdict

T = TypeVar("T")

#: Seconds calls fail at once after a failed connection attempt; doubled after
#: each failure in a row, up to :data:`RETRY_AFTER_MAX`.
RETRY_AFTER = 1.0
RETRY_AFTER_MAX = 30.0
#: Key of the advisory lock migrations hold ("mailward" in ASCII).
_MIGRATION_LOCK = 0x6D61696C77617264

#: libpq's words for a connection refused by the server's settings.
_REFUSED = re.compile(
    r"authentication failed|no password supplied|does not exist|no pg_hba\.conf entry"
)

_INSERT = (
    "INSERT INTO quarantine (id, created, sender, envelope, point, status, verdict, reason, "
    "size, sha256, subject, raw) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
)
_READ = "SELECT raw FROM quarantine WHERE id = %s"
_PURGE = "DELETE FROM quarantine WHERE created < %s"


def _pg(sql: str) -> str:
    """The shared ``?``-marked SQL with psycopg's marks (the text holds no other ``?``)."""
    return sql.replace("?", "%s")


class PostgresStore:
    """:class:`~mailwarden.store.base.QuarantineStore` on PostgreSQL."""

    def __init__(
        self,
        dsn: str,
        *,
        password_file: Path | None = None,
        connect_timeout: float = 5.0,
        statement_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        try:
            params = conninfo_to_dict(dsn)
        except psycopg.Error as exc:
            # the DSN may hold a password: say what is wrong, not what it is
            raise StoreError(f"[store] dsn is not a PostgreSQL connection string: {exc}") from None
        self._dsn = dsn
        self.server = describe(params)
        self._password_file = password_file
        self._connect_timeout = max(1, round(connect_timeout))
        self._statement_timeout = f"{round(statement_timeout * 1000)}"
        self._clock = clock
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._failed_at: float | None = None
        self._failures = 0
        self._last_error = ""

    # -- schema and health ------------------------------------------------------------

    def schema_version(self) -> int:
        row = self._run(lambda cur: cur.execute("SELECT version FROM schema_version").fetchone())
        return int(row[0]) if row else 0

    def ping(self) -> None:
        """Raise :class:`StoreError` naming the server unless it answers."""
        self._run(lambda cur: cur.execute("SELECT 1").fetchone())

    # -- quarantine -------------------------------------------------------------------

    def put(self, raw: bytes, envelope: Envelope, verdict: Verdict, reason: str) -> QuarantineId:
        qid = new_id()
        values = _rows.quarantine_values(qid, self._clock(), raw, envelope, verdict, reason)

        def insert(cur: psycopg.Cursor[Any]) -> None:
            cur.execute(_INSERT, (*values, raw))
            cur.executemany(_pg(_rows.INSERT_RECIPIENT), _rows.recipient_rows(qid, envelope))
            cur.executemany(_pg(_rows.INSERT_FINDING), _rows.finding_rows(qid, verdict))

        self._run(insert, write=True)
        return qid

    def get(self, qid: QuarantineId) -> QuarantineEntry:
        qid = parse_id(qid)
        sql = _pg(_rows.SELECT_ENTRY + " WHERE id = ?")
        row = self._run(lambda cur: cur.execute(sql, (qid,)).fetchone())
        if row is None:
            raise UnknownIdError(f"no quarantined message with id {qid}")
        return _rows.entry(row)

    def read(self, qid: QuarantineId) -> bytes:
        qid = parse_id(qid)
        row = self._run(lambda cur: cur.execute(_READ, (qid,)).fetchone())
        if row is None:
            raise UnknownIdError(f"no quarantined message with id {qid}")
        return bytes(row[0])

    def entries(self, where: QuarantineFilter | None = None) -> list[QuarantineEntry]:
        sql, params = _rows.filter_sql(where or QuarantineFilter())
        query = _pg(_rows.SELECT_ENTRY + sql)
        rows = self._run(lambda cur: cur.execute(query, params).fetchall())
        return [_rows.entry(row) for row in rows]

    def mark_released(self, qid: QuarantineId, recipients: tuple[str, ...]) -> None:
        qid = parse_id(qid)
        values = (self._clock(), _rows.json_list(recipients), qid)
        count = self._run(
            lambda cur: cur.execute(_pg(_rows.MARK_RELEASED), values).rowcount, write=True
        )
        if count == 0:
            raise UnknownIdError(f"no quarantined message with id {qid}")

    def delete(self, qid: QuarantineId) -> None:
        qid = parse_id(qid)
        count = self._run(
            lambda cur: cur.execute(_pg(_rows.DELETE_ENTRY), (qid,)).rowcount, write=True
        )
        if count == 0:
            raise UnknownIdError(f"no quarantined message with id {qid}")

    def purge(self, before: float) -> int:
        return int(self._run(lambda cur: cur.execute(_PURGE, (before,)).rowcount, write=True))

    # -- history ----------------------------------------------------------------------

    def record_event(self, event: ScanEvent) -> None:
        values = _rows.event_values(event)
        self._run(lambda cur: cur.execute(_pg(_rows.INSERT_EVENT), values), write=True)

    def events(
        self, since: float | None = None, until: float | None = None, limit: int = 1000
    ) -> list[ScanEvent]:
        low = since if since is not None else float("-inf")
        high = until if until is not None else float("inf")
        params = (low, high, max(0, limit))
        rows = self._run(lambda cur: cur.execute(_pg(_rows.SELECT_EVENTS), params).fetchall())
        return [_rows.event(r) for r in rows]

    def purge_events(self, before: float) -> int:
        sql = _pg(_rows.PURGE_EVENTS)
        return int(self._run(lambda cur: cur.execute(sql, (before,)).rowcount, write=True))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- plumbing ---------------------------------------------------------------------

    def _run(self, work: Callable[[psycopg.Cursor[Any]], T], *, write: bool = False) -> T:
        """``work`` in one transaction (for ``write``) on a live connection."""
        with self._lock:
            for attempt in (1, 2):
                conn, fresh = self._connection()
                committing = False
                try:
                    if not write:
                        with conn.cursor() as cur:
                            return work(cur)
                    with conn.transaction(), conn.cursor() as cur:
                        result = work(cur)
                        committing = True
                    return result
                except psycopg.Error as exc:
                    broken = conn.broken or conn.closed
                    if broken:
                        self._drop()
                    # a connection that died while idle (a server restart):
                    # nothing of this transaction reached the server, run it again
                    if broken and not fresh and not committing and attempt == 1:
                        continue
                    error = StoreUnavailableError if broken else StoreError
                    raise error(f"{self.server}: {_one_line(exc)}") from None
            raise AssertionError("unreachable")  # pragma: no cover

    def _connection(self) -> tuple[psycopg.Connection[Any], bool]:
        if self._conn is not None and not self._conn.closed:
            return self._conn, False
        if self._failed_at is not None and time.monotonic() - self._failed_at < self._backoff():
            raise StoreUnavailableError(f"{self.server}: unavailable ({self._last_error})")
        try:
            conninfo = make_conninfo(
                self._dsn,
                connect_timeout=self._connect_timeout,
                application_name="mailwarden",
                **self._password(),
            )
            conn = psycopg.connect(conninfo, autocommit=True)
        except psycopg.Error as exc:
            self._last_error = _one_line(exc)
            self._failed_at = time.monotonic()
            self._failures += 1
            # a refused login or a missing database is a setting to fix, not an
            # outage; libpq gives no SQLSTATE for a failed connection, only text
            refused = _REFUSED.search(self._last_error) is not None
            error = StoreError if refused else StoreUnavailableError
            raise error(f"cannot connect to {self.server}: {self._last_error}") from None
        try:
            conn.execute(
                "SELECT set_config('statement_timeout', %s, false)", (self._statement_timeout,)
            )
            # the common case, an up-to-date schema, costs one query and no lock
            # (one-shot commands such as `mailwarden mda` connect once per message)
            if _version(conn) != LATEST:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                    upgrade(conn, POSTGRESQL, "%s")
        except psycopg.Error as exc:
            conn.close()
            reason = _one_line(exc)
            raise StoreError(f"{self.server}: cannot prepare the schema: {reason}") from None
        except StoreError:
            conn.close()
            raise
        self._conn = conn
        self._failed_at, self._failures = None, 0
        return conn, True

    def _backoff(self) -> float:
        return float(min(RETRY_AFTER * 2.0 ** max(0, self._failures - 1), RETRY_AFTER_MAX))

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _password(self) -> dict[str, str]:
        if self._password_file is None:
            return {}  # libpq looks in PGPASSWORD, PGPASSFILE and ~/.pgpass
        path = self._password_file
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise StoreError(f"[store] password_file {path}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as src:
            if stat.S_IMODE(os.fstat(src.fileno()).st_mode) & 0o007:
                raise StoreError(
                    f"[store] password_file {path} is readable by others; chmod 600 {path}"
                )
            lines = src.read().decode("utf-8", "replace").splitlines()
        if not lines or not lines[0]:
            raise StoreError(f"[store] password_file {path} is empty")
        return {"password": lines[0]}


def _version(conn: psycopg.Connection[Any]) -> int | None:
    """The schema version, or None before the first migration."""
    found = conn.execute("SELECT to_regclass('schema_version')").fetchone()
    if not found or found[0] is None:
        return None
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else None


def describe(params: dict[str, Any]) -> str:
    """ "PostgreSQL server HOST port PORT, database DB as USER": no password, ever."""
    env = os.environ
    host = params.get("host") or params.get("hostaddr") or env.get("PGHOST") or "(local socket)"
    port = params.get("port") or env.get("PGPORT") or "5432"
    user = params.get("user") or env.get("PGUSER") or "(login name)"
    database = params.get("dbname") or env.get("PGDATABASE") or user
    return f"PostgreSQL server {host} port {port}, database {database} as {user}"


def _one_line(exc: BaseException) -> str:
    return re.sub(r"\s+", " ", str(exc)).strip()[:400]
