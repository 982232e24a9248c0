"""Fuzzing the milter packet reader and parsers with streams as an MTA could send them.

tests/intercept/milter/ fuzzes each parser on single packets and whole
dialogues against a live milter; here the byte stream itself is hostile:
packets with lengths that lie (zero, past the limit, past the end), cut into
arbitrary chunks, and each body handed to the parser of the command it names.
Properties: ``read_packet`` yields exactly the packets ``split_packets`` sees,
then None at a clean end; anything else is ``ProtocolError`` or an incomplete
read; each parser raises only ``ProtocolError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from fuzz.budget import fuzz
from mailwarden.intercept.milter import protocol as p

MAX = 512
_PARSE: dict[bytes, Callable[[bytes], object]] = {
    b"O": p.parse_optneg,
    b"D": p.parse_macro,
    b"C": p.parse_connect,
    b"L": p.parse_header,
    b"M": lambda data: p.parse_args(data, command="MAIL"),
    b"R": lambda data: p.parse_args(data, command="RCPT"),
}

_packet = st.one_of(
    st.builds(
        p.encode, st.sampled_from([bytes([c]) for c in b"ABCDEHKLMNOQRTU"]), st.binary(max_size=60)
    ),
    st.builds(
        lambda n, rest: struct.pack(">I", n) + rest,
        st.sampled_from([0, 1, MAX + 1, 2**31, 2**32 - 1]),
        st.binary(max_size=20),
    ),
    st.binary(max_size=10),
)


@fuzz(500)
@given(packets=st.lists(_packet, max_size=10), cuts=st.lists(st.integers(0, 10**6), max_size=6))
def test_read_packet_agrees_with_split_packets(packets: list[bytes], cuts: list[int]) -> None:
    wire = b"".join(packets)
    points = sorted({c % (len(wire) + 1) for c in cuts})

    async def read() -> tuple[list[p.Packet], BaseException | None]:
        reader = asyncio.StreamReader()
        start = 0
        for point in [*points, len(wire)]:
            reader.feed_data(wire[start:point])
            start = point
        reader.feed_eof()
        got: list[p.Packet] = []
        try:
            while (packet := await p.read_packet(reader, max_size=MAX)) is not None:
                got.append(packet)
        except (p.ProtocolError, asyncio.IncompleteReadError) as exc:
            return got, exc
        return got, None

    got, failure = asyncio.run(read())
    try:
        expected, rest = p.split_packets(wire)
    except p.ProtocolError:
        assert failure is not None
        return
    if failure is None:
        assert got == expected and rest == b""
    else:
        assert got == expected[: len(got)]
    for packet in got:
        parse = _PARSE.get(packet.command)
        if parse is not None:
            with contextlib.suppress(p.ProtocolError):
                parse(packet.data)
