"""IMAP wire format: FETCH responses and commands parsed and rebuilt, sections of a
replacement, literal reading with its limit, and hypothesis fuzz of the parsers (any
input parses or raises ImapError, never anything else)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.intercept.imap.fetch import (
    compose_fetch,
    key_of,
    parse_fetch,
    parse_fetch_command,
)
from mailwarden.intercept.imap.sections import item_value, section
from mailwarden.intercept.imap.wire import ImapError, nstring, quote, read_response, skip_value

LABELS = [b"UID", b"FLAGS", b"RFC822.SIZE", b"BODY[]", b"BODY[]<0>", b"BODY[TEXT]",
          b"BODY[HEADER.FIELDS (SUBJECT FROM)]", b"BINARY[1]", b"ENVELOPE", b"X-EXT"]  # fmt: skip
text = st.binary(max_size=60).filter(lambda b: b"\r" not in b and b"\n" not in b)
values = st.recursive(
    st.one_of(
        st.integers(min_value=0, max_value=2**31).map(lambda n: b"%d" % n),
        st.just(b"NIL"),
        st.binary(max_size=200).map(nstring),
        text.map(quote),
        st.just(b"\\Seen"),
    ),
    lambda inner: st.lists(inner, max_size=4).map(lambda v: b"(" + b" ".join(v) + b")"),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None)
@given(
    st.integers(min_value=1, max_value=10**6),
    st.lists(st.tuples(st.sampled_from(LABELS), values), max_size=6),
)
def test_fetch_responses_round_trip(seq: int, items: list[tuple[bytes, bytes]]) -> None:
    raw = compose_fetch(seq, items)
    parsed = parse_fetch(raw)
    assert parsed is not None
    assert parsed.seq == seq
    assert [(i.label, i.value) for i in parsed.items] == items


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_the_parsers_take_any_bytes(data: bytes) -> None:
    for candidate in (data, b"* 1 FETCH (" + data, b"a1 UID FETCH 1:* " + data):
        with contextlib.suppress(ImapError):
            parse_fetch(candidate)
        with contextlib.suppress(ImapError):
            parse_fetch_command(candidate)
        with contextlib.suppress(ImapError):
            skip_value(candidate, 0)


def test_a_content_fetch_is_rewritten_to_bring_the_whole_message_and_the_uid() -> None:
    cmd = parse_fetch_command(b"a1 FETCH 1:5 (FLAGS BODY.PEEK[HEADER]<0.100>)\r\n")
    assert cmd is not None and cmd.content
    assert cmd.rewritten() == b"a1 FETCH 1:5 (FLAGS BODY.PEEK[HEADER]<0.100> BODY.PEEK[] UID)\r\n"
    whole = parse_fetch_command(b"a2 UID FETCH 7 RFC822")
    assert whole is not None and whole.added() == ()
    assert parse_fetch_command(b"a3 FETCH 1 FAST") is not None
    assert not parse_fetch_command(b"a3 FETCH 1 FAST").content  # type: ignore[union-attr]
    for spelling in (b"body.peek[1.2]", b"BINARY[]", b"BINARY.SIZE[1]", b"RFC822.TEXT", b"PREVIEW"):
        got = parse_fetch_command(b"t FETCH 1 (" + spelling + b")")
        assert got is not None and got.content, spelling
    assert key_of(b"BODY.PEEK[TEXT]<10.20>") == b"BODY[TEXT]<10>"


MESSAGE = b"From: a@b\r\nSubject: s\r\nContent-Type: text/plain\r\n\r\nline 1\r\nline 2\r\n"


def test_sections_of_a_single_part_message() -> None:
    assert section(MESSAGE, b"") == MESSAGE
    assert section(MESSAGE, b"HEADER") + section(MESSAGE, b"TEXT") == MESSAGE  # type: ignore[operator]
    assert section(MESSAGE, b"1") == b"line 1\r\nline 2\r\n"
    assert section(MESSAGE, b"HEADER.FIELDS (SUBJECT)") == b"Subject: s\r\n\r\n"
    assert section(MESSAGE, b"2") is None
    assert item_value(b"BODY[]<2>", MESSAGE, count=3) == b"{3}\r\nom:"
    assert item_value(b"RFC822.SIZE", MESSAGE) == b"%d" % len(MESSAGE)
    assert item_value(b"BODY[2]", MESSAGE) == b"NIL"


def read(data: bytes, *, limit: int = 10_000) -> bytes:
    async def go() -> bytes:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await read_response(reader, limit=limit, timeout=5)

    return asyncio.run(go())


def test_a_literal_larger_than_what_follows_is_an_error() -> None:
    with pytest.raises(ImapError, match="inside a literal"):
        read(b"* 1 FETCH (BODY[] {100}\r\nshort)\r\n")


def test_a_response_over_the_limit_is_an_error() -> None:
    with pytest.raises(ImapError, match="over"):
        read(b"* 1 FETCH (BODY[] {5000}\r\n" + b"x" * 5000 + b")\r\n", limit=1000)


def test_literals_in_the_middle_of_a_response_are_read_whole() -> None:
    raw = b"* 1 FETCH (BODY[1] {3}\r\n)\r\n BODY[2] ~{2}\r\nab)\r\n"
    assert read(raw + b"* 2 EXISTS\r\n") == raw


def test_uid_sets_named_explicitly() -> None:
    def uids(text: bytes) -> list[int] | None:
        cmd = parse_fetch_command(b"a UID FETCH " + text + b" (BODY.PEEK[]<0.10>)")
        assert cmd is not None
        return cmd.uids()

    assert uids(b"3,5:7,9") == [3, 5, 6, 7, 9]
    assert uids(b"7:5") == [5, 6, 7]
    assert uids(b"1:*") is None
    assert uids(b"1:100000") is None  # too many to look up one by one
    seq = parse_fetch_command(b"a FETCH 1 (BODY[])")
    assert seq is not None and seq.uids() is None  # sequence numbers are not UIDs
