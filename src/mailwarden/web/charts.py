"""Charts drawn on the server as inline SVG: no script and nothing to download.

Usage::

    chart = line_chart(periods, title="Messages per hour")
    template.render(chart=chart)       # templates/_chart.html draws it

:func:`line_chart` only computes coordinates; the template writes the SVG
(autoescaped like every page).  Each series is a polyline with a point per
period; the y axis is rounded up to a readable maximum.

SECURITY: numbers and our own labels only; nothing from mail reaches a chart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mailwarden.web.history import SERIES, Periods

WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 28


@dataclass(frozen=True, slots=True)
class Line:
    series: str
    points: str
    total: int
    dots: tuple[tuple[float, float, int, str], ...]


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    width: int
    height: int
    lines: tuple[Line, ...]
    y_ticks: tuple[tuple[float, int], ...]
    x_labels: tuple[tuple[float, str], ...]
    plot: tuple[int, int, int, int]  # left, top, right, bottom
    periods: Periods

    @property
    def total(self) -> int:
        return self.periods.total("scanned")


def nice_max(value: int) -> int:
    """The smallest of 1, 2, 5 times a power of ten that is at least ``value`` (min 4)."""
    if value <= 4:
        return 4
    power: int = int("1" + "0" * (len(str(value)) - 1))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # pragma: no cover


def line_chart(periods: Periods, *, title: str) -> Chart:
    count = len(periods.starts)
    top_value = nice_max(max((max(v) for v in periods.counts.values() if v), default=0))
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM
    step = (right - LEFT) / max(count - 1, 1)

    def x(i: int) -> float:
        return round(LEFT + i * step, 1)

    def y(v: int) -> float:
        return round(bottom - (bottom - TOP) * v / top_value, 1)

    lines = []
    for name in SERIES:
        values = periods.counts[name]
        dots = tuple((x(i), y(v), v, periods.label(i)) for i, v in enumerate(values) if v)
        points = " ".join(f"{x(i)},{y(v)}" for i, v in enumerate(values))
        lines.append(Line(name, points, sum(values), dots))
    y_ticks = tuple((y(v), v) for v in (0, top_value // 2, top_value))
    every = max(1, math.ceil(count / 12))
    x_labels = tuple((x(i), periods.label(i)) for i in range(0, count, every))
    return Chart(
        title,
        WIDTH,
        HEIGHT,
        tuple(lines),
        y_ticks,
        x_labels,
        (LEFT, TOP, right, bottom),
        periods,
    )
