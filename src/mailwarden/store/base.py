"""The store interface: quarantine entries and the history of scanned messages.

Every backend (SQLite and its spool, PostgreSQL) implements
:class:`QuarantineStore`; callers only see this module's types::

    store = open_store(config)
    qid = store.put(raw, envelope, verdict, reason="policy.infected")
    for entry in store.entries(QuarantineFilter(recipient="bob@example.org")): ...
    raw = store.read(qid)
    store.record_event(ScanEvent(...))

SECURITY: ids are generated here (:func:`new_id`, 128 random bits) and are the
only thing that ever names a spool file; :func:`parse_id` rejects anything
else before a backend sees it.  Entries hold text from hostile mail (subject,
addresses, finding names): display them through ``verdict.display_name``.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any, NewType, Protocol

from mailwarden.errors import MailwardenError
from mailwarden.message import Envelope
from mailwarden.verdict import Verdict

QuarantineId = NewType("QuarantineId", str)

_ID = re.compile(r"^[0-9a-f]{32}$")


class StoreError(MailwardenError):
    """The store cannot be opened or written (permissions, corruption, full disk)."""


class StoreUnavailableError(StoreError):
    """The store's server cannot be reached now (down, restarting, network); a later
    attempt may succeed.  Mail that needs the store is deferred meanwhile."""


class UnknownIdError(StoreError):
    """No quarantine entry has this id."""


class MalformedIdError(StoreError):
    """The text is not a quarantine id at all."""


def new_id() -> QuarantineId:
    """A fresh id: 32 lower-case hex digits from the system's CSPRNG."""
    return QuarantineId(secrets.token_hex(16))


def parse_id(text: str) -> QuarantineId:
    """Check that ``text`` is an id we could have made; raise :class:`MalformedIdError`."""
    value = text.strip().lower()
    if not _ID.match(value):
        raise MalformedIdError(f"not a quarantine id (32 hex digits): {text[:80]!r}")
    return QuarantineId(value)


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    """Metadata of one quarantined message (the bytes come from ``read``)."""

    id: QuarantineId
    created: float
    envelope: Envelope
    verdict: Verdict
    reason: str
    size: int
    sha256: str
    subject: str = ""
    released: float | None = None
    released_to: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created": self.created,
            "envelope": self.envelope.to_dict(),
            "verdict": self.verdict.to_dict(),
            "reason": self.reason,
            "size": self.size,
            "sha256": self.sha256,
            "subject": self.subject,
            "released": self.released,
            "released_to": list(self.released_to),
        }


@dataclass(frozen=True, slots=True)
class QuarantineFilter:
    """Which entries ``entries`` returns; every field narrows, None means any.

    ``sender``/``recipient``: a full address (case-insensitive) or a domain
    (``example.org`` or ``@example.org``).  ``finding``: part of a finding
    name, case-insensitive.  ``since``/``until``: Unix times, inclusive.
    """

    since: float | None = None
    until: float | None = None
    sender: str | None = None
    recipient: str | None = None
    finding: str | None = None
    point: str | None = None
    released: bool | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class ScanEvent:
    """One scanned message in the history: what came, what was found, what was done."""

    time: float
    envelope: Envelope
    status: str
    action: str
    finding: str | None = None
    size: int = 0
    quarantine_id: QuarantineId | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "envelope": self.envelope.to_dict(),
            "status": self.status,
            "action": self.action,
            "finding": self.finding,
            "size": self.size,
            "quarantine_id": self.quarantine_id,
            "timings": dict(self.timings),
        }


class QuarantineStore(Protocol):
    """What every store backend provides.  Methods raise :class:`StoreError`."""

    def ping(self) -> None:
        """Raise :class:`StoreError` (whose text names the database) unless the store
        answers; cheap enough for a status page or a health check to call often."""
        ...

    def schema_version(self) -> int:
        """The schema version of the database (``_migrations.LATEST`` once open)."""
        ...

    def put(
        self, raw: bytes, envelope: Envelope, verdict: Verdict, reason: str
    ) -> QuarantineId: ...

    def get(self, qid: QuarantineId) -> QuarantineEntry:
        """The entry; :class:`UnknownIdError` if there is none."""
        ...

    def read(self, qid: QuarantineId) -> bytes:
        """The message exactly as it was quarantined."""
        ...

    def entries(self, where: QuarantineFilter | None = None) -> list[QuarantineEntry]:
        """Matching entries, newest first, at most ``where.limit``."""
        ...

    def mark_released(self, qid: QuarantineId, recipients: tuple[str, ...]) -> None: ...

    def delete(self, qid: QuarantineId) -> None: ...

    def purge(self, before: float) -> int:
        """Delete entries created before ``before``; return how many."""
        ...

    def record_event(self, event: ScanEvent) -> None: ...

    def events(
        self, since: float | None = None, until: float | None = None, limit: int = 1000
    ) -> list[ScanEvent]:
        """History, newest first."""
        ...

    def purge_events(self, before: float) -> int: ...

    def close(self) -> None: ...
