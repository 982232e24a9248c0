"""What the SQL backends share: the row layout, the filter's SQL and the decoding.

Both ``sqlite`` and ``postgres`` keep the same tables (``_migrations``), so
the values written for an entry or an event, the WHERE clause of a
:class:`~mailwarden.store.base.QuarantineFilter` and the decoding of a row
back into objects are written once here; each backend passes its driver's
parameter mark (``?`` or ``%s``).

SECURITY: every SQL fragment is fixed text; values from mail go only into
the parameter lists, and LIKE patterns have their wildcards escaped.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mailwarden.engine.mime.headers import decode_rfc2047, parse_headers
from mailwarden.message import Envelope
from mailwarden.store.base import QuarantineEntry, QuarantineFilter, QuarantineId, ScanEvent
from mailwarden.verdict import Verdict, display_name

#: Bytes read to find the Subject for listings; headers past this are ignored.
_HEADER_PEEK = 64 * 1024

# Fixed SQL text with ``?`` marks; the PostgreSQL backend turns them into ``%s``.
SELECT_ENTRY = (
    "SELECT id, created, envelope, verdict, reason, size, sha256, subject, released, "
    "released_to FROM quarantine"
)
INSERT_QUARANTINE = (
    "INSERT INTO quarantine (id, created, sender, envelope, point, status, verdict, reason, "
    "size, sha256, subject) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)
INSERT_RECIPIENT = "INSERT INTO quarantine_recipient (id, address) VALUES (?, ?)"
INSERT_FINDING = "INSERT INTO quarantine_finding (id, name) VALUES (?, ?)"
INSERT_EVENT = (
    "INSERT INTO event (time, queue_id, sender, envelope, direction, point, status, finding, "
    "action, size, quarantine_id, timings) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)
SELECT_EVENTS = (
    "SELECT time, envelope, status, action, finding, size, quarantine_id, timings FROM event "
    "WHERE time >= ? AND time <= ? ORDER BY time DESC, seq DESC LIMIT ?"
)
MARK_RELEASED = "UPDATE quarantine SET released = ?, released_to = ? WHERE id = ?"
DELETE_ENTRY = "DELETE FROM quarantine WHERE id = ?"
PURGE_EVENTS = "DELETE FROM event WHERE time < ?"

_SENDER_EXACT = "sender = ?"
_SENDER_DOMAIN = "sender LIKE ? ESCAPE '\\'"
_RCPT_EXACT = "id IN (SELECT id FROM quarantine_recipient WHERE address = ?)"
_RCPT_DOMAIN = "id IN (SELECT id FROM quarantine_recipient WHERE address LIKE ? ESCAPE '\\')"
_FINDING = "id IN (SELECT id FROM quarantine_finding WHERE lower(name) LIKE ? ESCAPE '\\')"


def quarantine_values(
    qid: QuarantineId,
    created: float,
    raw: bytes,
    envelope: Envelope,
    verdict: Verdict,
    reason: str,
) -> tuple[Any, ...]:
    """The parameters of :data:`INSERT_QUARANTINE` for a new entry."""
    return (
        qid,
        created,
        envelope.sender.lower(),
        json.dumps(envelope.to_dict()),
        envelope.point.value,
        verdict.status.value,
        json.dumps(verdict.to_dict()),
        reason,
        len(raw),
        hashlib.sha256(raw).hexdigest(),
        subject(raw),
    )


def recipient_rows(qid: QuarantineId, envelope: Envelope) -> list[tuple[str, str]]:
    return [(qid, r.lower()) for r in envelope.recipients]


def finding_rows(qid: QuarantineId, verdict: Verdict) -> list[tuple[str, str]]:
    return [(qid, f.name) for f in verdict.findings]


def json_list(items: tuple[str, ...]) -> str:
    """``released_to`` as stored."""
    return json.dumps(list(items))


def event_values(event: ScanEvent) -> tuple[Any, ...]:
    """The parameters of :data:`INSERT_EVENT` for ``event``."""
    env = event.envelope
    return (
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
    )


def filter_sql(where: QuarantineFilter) -> tuple[str, list[Any]]:
    """`` WHERE ... ORDER BY ... LIMIT ?`` for ``where`` (to follow :data:`SELECT_ENTRY`),
    and its parameters."""
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
        clauses.append(_SENDER_EXACT if exact else _SENDER_DOMAIN)
        params.append(value)
    if where.recipient:
        exact, value = _address_pattern(where.recipient)
        clauses.append(_RCPT_EXACT if exact else _RCPT_DOMAIN)
        params.append(value)
    if where.finding:
        clauses.append(_FINDING)
        params.append(f"%{_like(where.finding.lower())}%")
    if where.point:
        clauses.append("point = ?")
        params.append(where.point)
    if where.released is not None:
        clauses.append("released IS NOT NULL" if where.released else "released IS NULL")
    # joined from the fixed fragments above only; values are in params
    sql = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    params.append(max(0, where.limit))
    return sql + " ORDER BY created DESC, id LIMIT ?", params


def entry(row: tuple[Any, ...]) -> QuarantineEntry:
    """A row of :data:`SELECT_ENTRY` as an entry."""
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


def event(row: tuple[Any, ...]) -> ScanEvent:
    """A row of :data:`SELECT_EVENTS` as an event."""
    return ScanEvent(
        time=row[0],
        envelope=Envelope.from_dict(json.loads(row[1])),
        status=row[2],
        action=row[3],
        finding=row[4],
        size=row[5],
        quarantine_id=QuarantineId(row[6]) if row[6] else None,
        timings={str(k): float(v) for k, v in json.loads(row[7]).items()},
    )


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _address_pattern(value: str) -> tuple[bool, str]:
    """An address matches exactly; ``example.org`` or ``@example.org`` matches the domain."""
    text = value.strip().strip("<>").lower()
    if "@" in text.lstrip("@"):
        return True, text
    return False, "%@" + _like(text.lstrip("@"))


def subject(raw: bytes) -> str:
    """The decoded Subject of ``raw`` for listings, made safe to display."""
    head = raw[:_HEADER_PEEK]
    end = min((i for i in (head.find(b"\r\n\r\n"), head.find(b"\n\n")) if i >= 0), default=-1)
    block = head if end < 0 else head[:end]
    for name, value in parse_headers(block):
        if name.lower() == "subject":
            return display_name(decode_rfc2047(value), 300)
    return ""
