"""Store: the quarantine (metadata and message files) and the scan history.

Public API::

    store = open_store(config)                 # the configured backend
    qid = store.put(raw, envelope, verdict, reason)
    store.entries(QuarantineFilter(finding="eicar")); store.get(qid); store.read(qid)
    store.mark_released(qid, recipients); store.delete(qid); store.purge(before)
    store.record_event(ScanEvent(...)); store.events(since=...)

:class:`QuarantineStore` is the interface every backend implements;
``SqliteStore`` is the embedded default.

SECURITY: see ``base`` (ids), ``spool`` (file modes) and ``sqlite`` (SQL).
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
    UnknownIdError,
    new_id,
    parse_id,
)
from mailwarden.store.sqlite import SqliteStore


def open_store(config: Config) -> QuarantineStore:
    """Open the backend ``[store] backend`` names, creating its files if needed."""
    section = config["store"]
    if section["backend"] == "sqlite":
        return SqliteStore(Path(section["database"]), Path(section["spool_dir"]))
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
    "UnknownIdError",
    "new_id",
    "open_store",
    "parse_id",
]
