"""Messages and history rows the web tests put into a real store.

SECURITY: test-only.
"""

from __future__ import annotations

import time

from mailwarden.message import Direction, Envelope, Point
from mailwarden.store import QuarantineId, QuarantineStore, ScanEvent
from mailwarden.verdict import Finding, Status, Verdict

HOSTILE = b"""\
From: "Mallory <script>alert(1)</script>" <mallory@evil.example>
To: bob@example.org, carol@example.org
Subject: =?utf-8?q?Invoice_=3Cb=3Edue=3C/b=3E?=
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/html; charset=utf-8

<html><body><script>document.title='pwned'</script><img src="http://evil.example/t.gif">
<b>Pay now</b></body></html>
--b1
Content-Type: application/zip; name="../../etc/passwd.zip"
Content-Disposition: attachment; filename="../../etc/passwd.zip"
Content-Transfer-Encoding: base64

UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==
--b1--
"""


def envelope(
    point: Point = Point.MTA, direction: Direction = Direction.INBOUND, agent: str = "smtp-filter"
) -> Envelope:
    return Envelope(
        sender="mallory@evil.example",
        recipients=("bob@example.org", "carol@example.org"),
        client_address="192.0.2.7",
        helo="evil.example",
        queue_id="4ABC",
        direction=direction,
        point=point,
        agent=agent,
    )


def quarantine(store: QuarantineStore, raw: bytes = HOSTILE) -> QuarantineId:
    verdict = Verdict(
        Status.INFECTED,
        findings=(Finding("Win.Test.EICAR_HDB-1", "2/passwd.zip", "clamav"),),
        size=len(raw),
    )
    qid = store.put(raw, envelope(), verdict, reason="policy.infected")
    store.record_event(
        ScanEvent(time.time(), envelope(), "infected", "quarantine", verdict.name, len(raw), qid)
    )
    return qid


def history(
    store: QuarantineStore, now: float, rows: list[tuple[float, str, Point, Direction]]
) -> None:
    """One event per row: (seconds ago, status, point, direction)."""
    for ago, status, point, direction in rows:
        store.record_event(
            ScanEvent(now - ago, envelope(point, direction), status, "accept", None, 100)
        )
