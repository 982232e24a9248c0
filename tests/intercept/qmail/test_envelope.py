"""qmail-queue(8)'s envelope parser: golden files, the reader on a pipe, and fuzzing.

``golden/NAME.env`` holds the bytes a client writes to descriptor 1;
``golden/NAME.json`` the expected sender and recipients (and ``length``, the
envelope's size, when bytes follow it), or ``error`` with a phrase of the
expected :class:`EnvelopeError`.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.intercept.qmail import (
    EnvelopeError,
    encode_envelope,
    parse_envelope,
    read_envelope,
)

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.stem for p in GOLDEN.glob("*.env"))


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str) -> None:
    data = (GOLDEN / f"{name}.env").read_bytes()
    expected = json.loads((GOLDEN / f"{name}.json").read_text())
    if "error" in expected:
        with pytest.raises(EnvelopeError, match=expected["error"]):
            parse_envelope(data)
        return
    parsed = parse_envelope(data)
    assert parsed.sender == expected["sender"]
    assert list(parsed.recipients) == expected["recipients"]
    assert parsed.raw == data[: expected.get("length", len(data))]


def _pipe_with(chunks: list[bytes], close: bool = True) -> int:
    read, write = os.pipe()

    def feed() -> None:
        for chunk in chunks:
            os.write(write, chunk)
        if close:
            os.close(write)

    threading.Thread(target=feed).start()
    return read


def test_the_reader_joins_records_split_across_writes() -> None:
    data = encode_envelope("a@x", ["b@y", "c@z"])
    fd = _pipe_with([data[:1], data[1:6], data[6:]])
    try:
        assert read_envelope(fd).raw == data
    finally:
        os.close(fd)


def test_the_reader_stops_at_the_final_nul_without_waiting_for_eof() -> None:
    read, write = os.pipe()
    try:
        os.write(write, encode_envelope("a@x", ["b@y"]))
        assert read_envelope(read).recipients == ("b@y",)  # write end still open
    finally:
        os.close(read)
        os.close(write)


def test_descriptor_1_closed_early_is_an_error() -> None:
    fd = _pipe_with([b"Fa@x\0Tb@"])
    try:
        with pytest.raises(EnvelopeError, match="cut short"):
            read_envelope(fd)
    finally:
        os.close(fd)


def test_an_oversized_envelope_is_refused() -> None:
    fd = _pipe_with([b"F" + b"a" * 5000])
    try:
        with pytest.raises(EnvelopeError, match="longer than"):
            read_envelope(fd, limit=4096)
    finally:
        os.close(fd)


_address = st.binary(max_size=40).filter(lambda b: b"\0" not in b)


@settings(max_examples=300, deadline=None)
@given(sender=_address, recipients=st.lists(_address, min_size=1, max_size=8))
def test_round_trip(sender: bytes, recipients: list[bytes]) -> None:
    text = sender.decode("utf-8", "surrogateescape")
    rcpts = [r.decode("utf-8", "surrogateescape") for r in recipients]
    data = encode_envelope(text, rcpts)
    parsed = parse_envelope(data + b"junk after the envelope")
    assert (parsed.sender, list(parsed.recipients), parsed.raw) == (text, rcpts, data)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_envelope_error(data: bytes) -> None:
    try:
        parsed = parse_envelope(data)
    except EnvelopeError:
        return
    # whatever parses is a well-formed prefix that encodes back to itself
    assert encode_envelope(parsed.sender, parsed.recipients) == parsed.raw
    assert data.startswith(parsed.raw) and parsed.recipients
