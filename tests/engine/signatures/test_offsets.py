"""Offsets: parsing and the start windows they allow."""

from __future__ import annotations

import pytest

from mailwarden.engine.signatures.offsets import (
    ABSOLUTE,
    ANY,
    FROM_EOF,
    MalformedSignature,
    Offset,
    UnsupportedSignature,
    parse_offset,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("*", Offset(ANY)),
        ("0", Offset(ABSOLUTE, 0)),
        ("12", Offset(ABSOLUTE, 12)),
        ("12,5", Offset(ABSOLUTE, 12, 5)),
        ("EOF-10", Offset(FROM_EOF, 10)),
        ("EOF-10,4", Offset(FROM_EOF, 10, 4)),
    ],
)
def test_parse(text: str, expected: Offset) -> None:
    assert parse_offset(text) == expected
    assert str(parse_offset(text)) == text


@pytest.mark.parametrize("text", ["EP+0", "EP-10", "S2+78", "SE1", "SL+550", "EP+5,10", "VI"])
def test_executable_offsets_are_unsupported(text: str) -> None:
    with pytest.raises(UnsupportedSignature):
        parse_offset(text)


@pytest.mark.parametrize("text", ["", "-1", "x", "EOF+3", "1,", "12,x", "99999999999"])
def test_bad_offsets_are_malformed(text: str) -> None:
    with pytest.raises(MalformedSignature):
        parse_offset(text)


def test_windows() -> None:
    assert Offset(ANY).window(100) == (0, 100)
    assert Offset(ABSOLUTE, 10).window(100) == (10, 10)
    assert Offset(ABSOLUTE, 10, 5).window(100) == (10, 15)
    assert Offset(ABSOLUTE, 98, 5).window(100) == (98, 100)
    assert Offset(ABSOLUTE, 101).window(100) is None
    assert Offset(FROM_EOF, 10).window(100) == (90, 90)
    assert Offset(FROM_EOF, 10, 3).window(100) == (90, 93)
    assert Offset(FROM_EOF, 101).window(100) is None
