"""Chart geometry: a readable y maximum and points inside the plot."""

from __future__ import annotations

import pytest

from mailwarden.web.charts import HEIGHT, line_chart, nice_max
from mailwarden.web.history import SERIES, Periods


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 4), (3, 4), (7, 10), (11, 20), (130, 200), (999, 1000), (5000, 5000)],
)
def test_nice_max(value: int, expected: int) -> None:
    assert nice_max(value) == expected


def test_points_lie_in_the_plot_and_the_peak_reaches_its_height() -> None:
    counts = {name: (0, 0, 0) for name in SERIES}
    counts["scanned"] = (0, 10, 5)
    chart = line_chart(Periods(3600, (0.0, 3600.0, 7200.0), counts), title="t")
    scanned = next(line for line in chart.lines if line.series == "scanned")
    ys = [float(p.split(",")[1]) for p in scanned.points.split()]
    _, top, _, bottom = chart.plot
    assert ys == [bottom, top, (top + bottom) / 2]
    assert all(0 <= y <= HEIGHT for y in ys)
    assert [v for _, _, v, _ in scanned.dots] == [10, 5]
    assert chart.total == 15
