"""The packet codec: framing, parsers, reply encoders; hypothesis fuzz of the parsers."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.errors import ConfigError
from mailwarden.intercept.milter import protocol as p
from mailwarden.intercept.milter.settings import parse_socket


def _read(data: bytes, max_size: int = p.MAX_PACKET) -> p.Packet | None:
    async def main() -> p.Packet | None:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await p.read_packet(reader, max_size=max_size)

    return asyncio.run(main())


def test_framing_round_trip() -> None:
    wire = p.encode(p.Command.HELO, b"client.example\0")
    assert wire == b"\0\0\0\x10Hclient.example\0"
    assert _read(wire) == p.Packet(b"H", b"client.example\0")
    packets, rest = p.split_packets(wire + wire[:7])
    assert len(packets) == 1 and rest == wire[:7]


def test_framing_rejects_zero_and_oversized_lengths_before_reading() -> None:
    with pytest.raises(p.ProtocolError, match="length 0"):
        _read(b"\0\0\0\0")
    with pytest.raises(p.ProtocolError, match="over the limit"):
        _read(struct.pack(">I", 2**31) + b"B")
    assert _read(b"") is None  # a clean close between packets
    with pytest.raises(asyncio.IncompleteReadError):
        _read(b"\0\0\0\x10Hcli")  # a close inside one


def test_parsers() -> None:
    offer = p.parse_optneg(struct.pack(">III", 6, 0x1FF, 0x1FFFFF))
    assert offer.version == 6 and p.Act.QUARANTINE in offer.actions
    assert p.parse_macro(b"C{daemon_name}\0smtpd\0j\0mx\0") == (
        "C",
        {"{daemon_name}": "smtpd", "j": "mx"},
    )
    assert p.parse_connect(b"host\x004\x9c\x40192.0.2.1\0") == p.Connect(
        "host", "4", 40000, "192.0.2.1"
    )
    assert p.parse_connect(b"localhost\0U") == p.Connect("localhost", "U", 0, "")
    assert p.parse_header(b"Subject\0 hi\0") == ("Subject", b" hi")
    assert p.parse_args(b"<a@b>\0SIZE=10\0", command="MAIL") == ["<a@b>", "SIZE=10"]
    for bad in (b"", b"host", b"host\0X", b"host\x004\x01"):
        with pytest.raises(p.ProtocolError):
            p.parse_connect(bad)
    with pytest.raises(p.ProtocolError):
        p.parse_macro(b"Cname-without-value\0")


def test_replies_cannot_smuggle_a_second_line_or_packet() -> None:
    wire = p.reply_code("554 5.7.1 Infected: a\r\n250 ok\0x 100%")
    (packet,), _ = p.split_packets(wire)
    assert packet.data == b"554 5.7.1 Infected: a  250 ok x 100%%\0"
    (header,), _ = p.split_packets(p.add_header("X-Virus-Status", "Clean\r\nBcc: x"))
    assert header.data == b"X-Virus-Status\0Clean  Bcc: x\0"


def test_socket_notation() -> None:
    assert str(parse_socket("inet:8890@127.0.0.1", key="k")) == "inet:8890@127.0.0.1"
    assert parse_socket("inet6:8890@[::1]", key="k").host == "::1"
    assert parse_socket("unix:/run/m.sock", key="k").path == "/run/m.sock"
    assert parse_socket("local:/run/m.sock", key="k").kind == "unix"
    assert parse_socket("/run/m.sock", key="k").kind == "unix"
    for bad in ("inet:x@h", "unix:relative", "tcp:1@h", "inet:70000@h"):
        with pytest.raises(ConfigError):
            parse_socket(bad, key="k")


def _parse_mail(data: bytes) -> list[str]:
    return p.parse_args(data, command="MAIL")


_PARSERS: list[Callable[[bytes], object]] = [
    p.parse_optneg,
    p.parse_macro,
    p.parse_connect,
    p.parse_header,
    _parse_mail,
]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_parsers_raise_only_protocol_errors(data: bytes) -> None:
    for parse in _PARSERS:
        with contextlib.suppress(p.ProtocolError):
            parse(data)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(list(b"ABCDEHKLMNOQRTUZ\0")), st.binary(max_size=40))))
def test_fuzz_framing_round_trips(items: list[tuple[int, bytes]]) -> None:
    wire = b"".join(p.encode(bytes([c]), d) for c, d in items)
    packets, rest = p.split_packets(wire)
    assert rest == b""
    assert [(pk.command, pk.data) for pk in packets] == [(bytes([c]), d) for c, d in items]
