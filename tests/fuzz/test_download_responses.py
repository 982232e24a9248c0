"""Fuzzing what the POP3 and IMAP proxies read from a server.

The readers (``pop3/codec.read_multiline``, ``imap/wire.read_response``) get
generated server output (status lines, dot-stuffed bodies, literal
announcements that lie about their size, stray CR/LF/NUL, huge counts) cut into
arbitrary chunks, then the end of the stream.  Properties: a reader returns a
prefix of what was sent, bounded by its limit, or raises the module's error
(``Pop3Error``, ``ImapError``); it never raises anything else and never waits
past the end of the stream.  What a reader returns then goes through the
parsers the sessions use (``unstuff``, ``parse_listing``, ``parse_fetch``).
"""

from __future__ import annotations

import asyncio
import contextlib

from hypothesis import given
from hypothesis import strategies as st

from fuzz.budget import fuzz
from mailwarden.intercept.imap.fetch import parse_fetch
from mailwarden.intercept.imap.wire import ImapError, read_response
from mailwarden.intercept.pop3.codec import (
    Pop3Error,
    parse_listing,
    read_multiline,
    split_lines,
    unstuff,
)

LIMIT = 4096
_CRLF = st.sampled_from([b"\r\n", b"\n", b"\r", b""])


def _feed(chunks: list[bytes]) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=LIMIT)
    for chunk in chunks:
        reader.feed_data(chunk)
    reader.feed_eof()
    return reader


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, start = [], 0
    for point in [*points, len(data)]:
        out.append(data[start:point])
        start = point
    return [c for c in out if c]


_pop3_lines = st.lists(
    st.one_of(
        st.sampled_from([b".", b"..", b"...x", b"+OK", b"-ERR", b"1 120", b"2 abc", b"x" * 5000]),
        st.binary(max_size=60),
    ).flatmap(lambda line: _CRLF.map(lambda end: line + end)),
    max_size=30,
).map(b"".join)


@fuzz(500)
@given(body=_pop3_lines, cuts=st.lists(st.integers(0, 10**6), max_size=6), end=st.booleans())
def test_pop3_multiline_reader(body: bytes, cuts: list[int], end: bool) -> None:
    wire = body + (b"\r\n.\r\n" if end else b"")

    async def read() -> bytes:
        return await read_multiline(_feed(_cut(wire, cuts)), limit=LIMIT, timeout=5)

    try:
        got = asyncio.run(read())
    except Pop3Error:
        return
    assert wire.startswith(got) and len(got) <= LIMIT + 5
    with contextlib.suppress(Pop3Error):
        unstuff(got)
    listing = parse_listing(split_lines(got))
    assert all(isinstance(k, int) for k in listing)


_literal = st.builds(
    lambda size, plus, data: b"{%d%s}\r\n" % (size, b"+" if plus else b"") + data,
    st.one_of(st.integers(0, 80), st.sampled_from([LIMIT, 10**9, 2**63])),
    st.booleans(),
    st.binary(max_size=80),
)
_imap_pieces = st.lists(
    st.one_of(
        st.sampled_from(
            [
                b"* 1 FETCH (UID 7 BODY[] ",
                b"* 2 FETCH (RFC822 ",
                b"* 3 FETCH (FLAGS (\\Seen) BODY[HEADER.FIELDS (SUBJECT)] ",
                b")\r\n",
                b"a1 OK done\r\n",
                b"NIL",
                b'"quoted \\" string"',
            ]
        ),
        _literal,
        st.binary(max_size=40),
    ),
    max_size=12,
).map(b"".join)


@fuzz(500)
@given(wire=_imap_pieces, cuts=st.lists(st.integers(0, 10**6), max_size=6))
def test_imap_response_reader(wire: bytes, cuts: list[int]) -> None:
    async def read_all() -> list[bytes]:
        reader = _feed(_cut(wire, cuts))
        out = []
        while response := await read_response(reader, limit=LIMIT, timeout=5):
            assert len(response) <= LIMIT + 64
            out.append(response)
        return out

    try:
        responses = asyncio.run(read_all())
    except ImapError:
        return
    assert b"".join(responses) == wire
    for response in responses:
        with contextlib.suppress(ImapError):
            parse_fetch(response)
