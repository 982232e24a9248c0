"""The budget: every limit raises LimitExceeded with a readable reason."""

from __future__ import annotations

import pytest

from mailwarden.engine.limits import Budget, LimitExceeded, Limits


def test_depth_files_bytes_ratio_time() -> None:
    now = [0.0]
    budget = Budget(
        Limits(
            max_depth=2,
            max_files=2,
            max_total_bytes=10,
            max_ratio=10,
            ratio_floor=100,
            max_seconds=5,
        ),
        clock=lambda: now[0],
    )
    budget.check_depth(2)
    with pytest.raises(LimitExceeded, match="depth") as err:
        budget.check_depth(3)
    assert not err.value.fatal
    budget.add_file()
    budget.add_file()
    with pytest.raises(LimitExceeded, match="files") as err:
        budget.add_file()
    assert err.value.fatal
    budget.add_bytes(10)
    with pytest.raises(LimitExceeded, match="expanded bytes"):
        budget.add_bytes(1)
    budget.check_ratio(1, 99)  # under the floor: small files are never bombs
    budget.check_ratio(100, 1000)
    with pytest.raises(LimitExceeded, match="ratio"):
        budget.check_ratio(100, 1001)
    budget.check_time()
    now[0] = 5.1
    with pytest.raises(LimitExceeded, match="time") as err:
        budget.check_time()
    assert err.value.fatal
