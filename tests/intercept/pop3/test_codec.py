"""POP3 wire format: dot-stuffing round trips, TOP, CAPA, multi-line reading with its
limit, and hypothesis fuzz of the parsers (any input parses or raises Pop3Error)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.intercept.pop3.codec import (
    Pop3Error,
    TooLarge,
    filter_capa,
    parse_listing,
    read_multiline,
    split_lines,
    stuff,
    top,
    unstuff,
)

lines = st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")))


def feed(data: bytes, *, limit: int = 10_000) -> bytes:
    async def go() -> bytes:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await read_multiline(reader, limit=limit, timeout=5)

    return asyncio.run(go())


@settings(max_examples=300, deadline=None)
@given(lines)
def test_stuffing_round_trips_for_any_message(parts: list[bytes]) -> None:
    raw = b"".join(p + b"\r\n" for p in parts)
    wire = stuff(raw)
    assert wire.endswith(b".\r\n")
    assert b"\r\n.\r\n" not in wire[:-3] or wire == b".\r\n" or wire.endswith(b"\r\n.\r\n")
    assert unstuff(feed(wire)) == raw


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_unstuff_and_listings_take_any_bytes(data: bytes) -> None:
    with contextlib.suppress(Pop3Error):
        unstuff(data)
    parse_listing(split_lines(data + b"\r\n.\r\n"))
    filter_capa([data], stls=True)


@settings(max_examples=200, deadline=None)
@given(lines, st.integers(min_value=0, max_value=10))
def test_top_is_a_prefix_of_the_message(parts: list[bytes], count: int) -> None:
    raw = b"Subject: x\r\n\r\n" + b"".join(p + b"\r\n" for p in parts)
    cut = top(raw, count)
    assert raw.startswith(cut)
    assert cut.startswith(b"Subject: x\r\n\r\n")


def test_a_response_over_the_limit_is_read_to_its_end_then_refused() -> None:
    body = b"x" * 5000 + b"\r\n.\r\n"
    with pytest.raises(TooLarge):
        feed(body, limit=1000)


def test_a_response_cut_short_is_an_error() -> None:
    with pytest.raises(Pop3Error):
        feed(b"line one\r\nline two\r\n")


def test_capa_offers_stls_only_when_the_proxy_can() -> None:
    server = [b"TOP\r\n", b"STLS\r\n", b"SASL PLAIN\r\n"]
    assert filter_capa(server, stls=False) == [b"TOP\r\n", b"SASL PLAIN\r\n"]
    assert filter_capa(server, stls=True)[-1] == b"STLS\r\n"
