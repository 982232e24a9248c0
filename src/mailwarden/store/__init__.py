"""Store: the quarantine (metadata and message files) and the scan history.

Public API::

    store = open_store(config)                 # the configured backend
    qid = store.put(raw, envelope, verdict, reason)
    store.entries(QuarantineFilter(finding="eicar")); store.get(qid); store.read(qid)
    store.mark_released(qid, recipients); store.delete(qid); store.purge(before)
    store.record_event(ScanEvent(...)); store.events(since=...)

:class:`QuarantineStore` is the interface every backend implements;
``SqliteStore`` is the embedded default, ``PostgresStore`` the shared one
for several gateway nodes (imported only when configured: psycopg is not
loaded by processes that do not use it).  ``retention`` purges what is older
than the retention periods, by hand or once an hour from ``serve``.

SECURITY: see ``base`` (ids), ``spool`` (file modes), ``sqlite`` and
``postgres`` (SQL, the password).
"""

from pathlib import Path

from mailwarden.config import Config
from mailwarden.store.base import (
    MalformedIdError,
    QuarantineEntry,
    QuarantineFilter,
    QuarantineId,
    QuarantineStore,
    ScanEvent,
    StoreError,
    StoreUnavailableError,
    UnknownIdError,
    new_id,
    parse_id,
)
from mailwarden.store.sqlite import SqliteStore


def open_store(config: Config) -> QuarantineStore:
    """Open the backend ``[store] backend`` names.

    SQLite: creates its files if needed.  PostgreSQL: connects on first use,
    so opening succeeds while the server is down and each call then raises
    :class:`StoreError` naming the server.
    """
    section = config["store"]
    if section["backend"] == "sqlite":
        return SqliteStore(Path(section["database"]), Path(section["spool_dir"]))
    if section["backend"] == "postgresql":
        from mailwarden.store.postgres import PostgresStore

        return PostgresStore(
            section["dsn"],
            password_file=Path(section["password_file"]) if section["password_file"] else None,
            connect_timeout=section["connect_timeout"],
            statement_timeout=section["statement_timeout"],
        )
    raise StoreError(f"unknown store backend {section['backend']!r}")  # pragma: no cover


__all__ = [
    "MalformedIdError",
    "QuarantineEntry",
    "QuarantineFilter",
    "QuarantineId",
    "QuarantineStore",
    "ScanEvent",
    "SqliteStore",
    "StoreError",
    "StoreUnavailableError",
    "UnknownIdError",
    "new_id",
    "open_store",
    "parse_id",
]
