"""Logical expressions of .ldb signatures."""

from __future__ import annotations

import pytest

from mailwarden.engine.signatures.logic import count_cap, evaluate, leaves, parse_expression
from mailwarden.engine.signatures.offsets import MalformedSignature


def _ev(text: str, counts: list[int]) -> bool:
    return evaluate(parse_expression(text, len(counts)), counts)


@pytest.mark.parametrize(
    ("text", "counts", "expected"),
    [
        ("0", [1], True),
        ("0", [0], False),
        ("0&1", [1, 1], True),
        ("0&1", [1, 0], False),
        ("0|1", [0, 1], True),
        ("0|1", [0, 0], False),
        ("0|1&2", [1, 0, 0], True),  # & binds tighter than |
        ("(0|1)&2", [1, 0, 0], False),
        ("0=2", [2], True),
        ("0=2", [3], False),
        ("0=0", [0], True),
        ("0&1=0", [1, 0], True),
        ("0&1=0", [1, 1], False),
        ("0>2", [3], True),
        ("0>2", [2], False),
        ("0<2", [1], True),
        ("0<2", [2], False),
        ("(0|1)=2,2", [1, 1], True),
        ("(0|1)=2,2", [2, 0], False),
        ("(0|1|2)>2,2", [2, 1, 0], True),
        ("(0|1|2)>2,2", [3, 0, 0], False),
        ("(0|1)<3,2", [1, 1], True),
        ("(0|1)<3,2", [2, 0], False),
        ("((0|1)&(2|3))&4", [0, 1, 1, 0, 1], True),
        (" 0 & 1 ", [1, 1], True),
    ],
)
def test_evaluate(text: str, counts: list[int], expected: bool) -> None:
    assert _ev(text, counts) is expected


@pytest.mark.parametrize("text", ["", "0&", "(0", "0)", "2", "0=", "0>x", "a", "0&&1", "0=1,"])
def test_malformed(text: str) -> None:
    with pytest.raises(MalformedSignature):
        parse_expression(text, 2)


def test_depth_is_bounded() -> None:
    with pytest.raises(MalformedSignature, match="deeply"):
        parse_expression("(" * 100 + "0" + ")" * 100, 1)


def test_count_cap_and_leaves() -> None:
    tree = parse_expression("(0|1)>4,2&2", 3)
    assert count_cap(tree) == 5
    assert leaves(tree) == [0, 1, 2]
    assert count_cap(parse_expression("0&1", 2)) == 1
