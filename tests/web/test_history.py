"""Counting the history per period, per interception point and per direction."""

from __future__ import annotations

from mailwarden.message import Direction, Envelope, Point
from mailwarden.store import ScanEvent
from mailwarden.web.history import breakdown, per_period, scans

NOW = 1_700_000_000.0 - (1_700_000_000 % 3600) + 1800  # half past an hour


def _event(ago: float, status: str, action: str = "accept", point: Point = Point.MTA) -> ScanEvent:
    return ScanEvent(NOW - ago, Envelope(point=point, direction=Direction.INBOUND), status, action)


def test_per_hour_counts_each_message_once_as_scanned_and_once_by_status() -> None:
    events = [
        _event(0, "clean"),
        _event(60, "infected"),
        _event(1799, "suspicious"),  # same hour
        _event(1801, "unscanned"),  # the hour before
        _event(48 * 3600, "error"),  # outside 48 hours
    ]
    hours = per_period(events, now=NOW, period=3600, count=48)
    assert hours.counts["scanned"][-1] == 3 and hours.counts["scanned"][-2] == 1
    assert hours.counts["infected"][-1] == 1
    assert hours.counts["unscanned"][-2] == 1
    assert hours.total("error") == 0 and hours.total("scanned") == 4
    assert hours.label(47) == "22:00"


def test_releases_are_not_scans() -> None:
    events = scans([_event(0, "infected", "release"), _event(0, "infected", "quarantine")])
    assert len(events) == 1


def test_breakdown_by_point_busiest_first() -> None:
    rows = breakdown(
        [_event(0, "clean", point=Point.MDA), _event(0, "infected"), _event(0, "clean")],
        key=lambda e: e.envelope.point.value,
    )
    assert [name for name, _ in rows] == ["S1", "S2"]
    assert rows[0][1]["infected"] == 1 and rows[0][1]["scanned"] == 2
