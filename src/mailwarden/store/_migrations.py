"""Versioned schema of the SQLite store: each step runs once, in order.

A new step is appended, never edited: databases in the field have already run
the old ones.  ``schema_version`` holds the number of the last step applied.

SECURITY: fixed SQL text only; no values are interpolated.
"""

from __future__ import annotations

MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
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

#: The version a database has after every migration ran.
LATEST = MIGRATIONS[-1][0]
