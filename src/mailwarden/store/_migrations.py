"""Versioned schema of the stores: each step runs once, in order, per backend.

A new step is appended to both tables, never edited: databases in the field
have already run the old ones.  ``schema_version`` holds the number of the
last step applied.  :func:`upgrade` is the one mechanism both backends use;
the caller runs it inside a write transaction that no other process can
enter at the same time (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: an
advisory lock), so two processes opening a fresh database migrate it once.

SECURITY: fixed SQL text only; the version number is the only parameter.
"""

from __future__ import annotations

from typing import Any, Protocol

from mailwarden.store.base import StoreError

Steps = tuple[tuple[int, tuple[str, ...]], ...]


class _Executes(Protocol):
    def execute(self, sql: Any, params: Any = ..., /) -> Any: ...


SQLITE: Steps = (
    (
        1,
        (
            """CREATE TABLE quarantine (
                id TEXT PRIMARY KEY,
                created REAL NOT NULL,
                sender TEXT NOT NULL,
                envelope TEXT NOT NULL,
                point TEXT NOT NULL,
                status TEXT NOT NULL,
                verdict TEXT NOT NULL,
                reason TEXT NOT NULL,
                size INTEGER NOT NULL,
                sha256 TEXT NOT NULL,
                subject TEXT NOT NULL,
                released REAL,
                released_to TEXT
            )""",
            "CREATE INDEX quarantine_created ON quarantine (created)",
            "CREATE INDEX quarantine_sender ON quarantine (sender)",
            """CREATE TABLE quarantine_recipient (
                id TEXT NOT NULL REFERENCES quarantine (id) ON DELETE CASCADE,
                address TEXT NOT NULL
            )""",
            "CREATE INDEX quarantine_recipient_address ON quarantine_recipient (address)",
            "CREATE INDEX quarantine_recipient_id ON quarantine_recipient (id)",
            """CREATE TABLE quarantine_finding (
                id TEXT NOT NULL REFERENCES quarantine (id) ON DELETE CASCADE,
                name TEXT NOT NULL
            )""",
            "CREATE INDEX quarantine_finding_id ON quarantine_finding (id)",
            """CREATE TABLE event (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                time REAL NOT NULL,
                queue_id TEXT,
                sender TEXT NOT NULL,
                envelope TEXT NOT NULL,
                direction TEXT NOT NULL,
                point TEXT NOT NULL,
                status TEXT NOT NULL,
                finding TEXT,
                action TEXT NOT NULL,
                size INTEGER NOT NULL,
                quarantine_id TEXT,
                timings TEXT NOT NULL
            )""",
            "CREATE INDEX event_time ON event (time)",
        ),
    ),
)

POSTGRESQL: Steps = (
    (
        1,
        (
            # the message bytes live in the database (``raw``), so every node
            # that shares it sees the same quarantine; see docs/quarantine.md
            """CREATE TABLE quarantine (
                id text PRIMARY KEY,
                created double precision NOT NULL,
                sender text NOT NULL,
                envelope text NOT NULL,
                point text NOT NULL,
                status text NOT NULL,
                verdict text NOT NULL,
                reason text NOT NULL,
                size bigint NOT NULL,
                sha256 text NOT NULL,
                subject text NOT NULL,
                released double precision,
                released_to text,
                raw bytea NOT NULL
            )""",
            "CREATE INDEX quarantine_created ON quarantine (created)",
            "CREATE INDEX quarantine_sender ON quarantine (sender)",
            """CREATE TABLE quarantine_recipient (
                id text NOT NULL REFERENCES quarantine (id) ON DELETE CASCADE,
                address text NOT NULL
            )""",
            "CREATE INDEX quarantine_recipient_address ON quarantine_recipient (address)",
            "CREATE INDEX quarantine_recipient_id ON quarantine_recipient (id)",
            """CREATE TABLE quarantine_finding (
                id text NOT NULL REFERENCES quarantine (id) ON DELETE CASCADE,
                name text NOT NULL
            )""",
            "CREATE INDEX quarantine_finding_id ON quarantine_finding (id)",
            """CREATE TABLE event (
                seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                time double precision NOT NULL,
                queue_id text,
                sender text NOT NULL,
                envelope text NOT NULL,
                direction text NOT NULL,
                point text NOT NULL,
                status text NOT NULL,
                finding text,
                action text NOT NULL,
                size bigint NOT NULL,
                quarantine_id text,
                timings text NOT NULL
            )""",
            "CREATE INDEX event_time ON event (time)",
        ),
    ),
)

#: The version a database has after every migration ran (the same for every backend).
LATEST = SQLITE[-1][0]


_SET_VERSION = (
    "INSERT INTO schema_version (version) VALUES (?)",
    "UPDATE schema_version SET version = ?",
)


def upgrade(db: _Executes, steps: Steps, mark: str) -> int:
    """Bring the schema to :data:`LATEST`; return the version found before.

    ``db`` is a connection (or cursor) already inside the locked write
    transaction; ``mark`` is the driver's parameter mark (``?``, ``%s``).
    Raises :class:`StoreError` for a database newer than this program.
    """
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
    row = db.execute("SELECT version FROM schema_version").fetchone()
    current = int(row[0]) if row else 0
    if current > LATEST:
        raise StoreError(
            f"the store database has schema version {current}, newer than this "
            f"mailwarden knows ({LATEST}); upgrade mailwarden"
        )
    for version, statements in steps:
        if version > current:
            for statement in statements:
                db.execute(statement)
    if row is None:
        db.execute(_SET_VERSION[0].replace("?", mark), (LATEST,))
    elif current < LATEST:
        db.execute(_SET_VERSION[1].replace("?", mark), (LATEST,))
    return current
