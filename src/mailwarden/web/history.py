"""The dashboard's figures: the store's scan history counted per hour, per day,
per interception point and per direction.

Usage::

    events = store.events(since=now - 30 * 86400, limit=200_000)
    hourly = per_period(events, now=now, period=3600, count=48)
    daily = per_period(events, now=now, period=86400, count=30)
    rows = breakdown(events, key=lambda e: e.envelope.point.value)

A message counts once in ``scanned`` and once more in its status's series
(infected, suspicious, unscanned, error); clean mail is ``scanned`` only.
History rows of releases (action ``release``) are not scans and are left out.

SECURITY: pure counting over values the store returns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from mailwarden.store import ScanEvent

SERIES: tuple[str, ...] = ("scanned", "infected", "suspicious", "unscanned", "error")


@dataclass(frozen=True, slots=True)
class Periods:
    """Counts per series for ``count`` consecutive periods ending with the current one."""

    period: int
    starts: tuple[float, ...]
    counts: dict[str, tuple[int, ...]]

    def label(self, index: int) -> str:
        moment = dt.datetime.fromtimestamp(self.starts[index], dt.UTC)
        return moment.strftime("%H:00" if self.period < 86400 else "%m-%d")

    def total(self, series: str) -> int:
        return sum(self.counts[series])


def _series(event: ScanEvent) -> tuple[str, ...]:
    if event.status in SERIES[1:]:
        return ("scanned", event.status)
    return ("scanned",)


def scans(events: Iterable[ScanEvent]) -> list[ScanEvent]:
    """The events that record a scanned message (not a release)."""
    return [e for e in events if e.action != "release"]


def per_period(events: Sequence[ScanEvent], *, now: float, period: int, count: int) -> Periods:
    last = int(now // period) * period
    first = last - (count - 1) * period
    counts = {name: [0] * count for name in SERIES}
    for event in events:
        index = int((event.time - first) // period)
        if 0 <= index < count:
            for name in _series(event):
                counts[name][index] += 1
    starts = tuple(float(first + i * period) for i in range(count))
    return Periods(period, starts, {k: tuple(v) for k, v in counts.items()})


def breakdown(
    events: Sequence[ScanEvent], key: Callable[[ScanEvent], str]
) -> list[tuple[str, dict[str, int]]]:
    """Counts per series for each value of ``key``, the busiest first."""
    table: dict[str, dict[str, int]] = {}
    for event in events:
        row = table.setdefault(key(event), dict.fromkeys(SERIES, 0))
        for name in _series(event):
            row[name] += 1
    return sorted(table.items(), key=lambda item: (-item[1]["scanned"], item[0]))
