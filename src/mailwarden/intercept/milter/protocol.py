"""The milter wire protocol (Sendmail 8 / Postfix, version 6): constants, framing, parsing.

Every packet is a 4-byte big-endian length (the command byte included), one
command byte and the command's data.  This module turns bytes into
:class:`Packet` objects and typed values, and replies into bytes; it does no
I/O beyond reading one packet from an ``asyncio.StreamReader``::

    packet = await read_packet(reader, max_size=MAX_PACKET)   # None at a clean EOF
    if packet.command == Command.OPTNEG:
        offer = parse_optneg(packet.data)
    writer.write(encode(Reply.ACCEPT))
    writer.write(reply_code("554 5.7.1 Infected: Eicar-Test-Signature"))

Parsers raise :class:`ProtocolError` for malformed data; they never return
half-parsed values.

SECURITY: the peer is an MTA, but the bytes are treated as hostile anyway:
a packet's length is checked against ``max_size`` before anything is read
or allocated, strings must be NUL-terminated, and numbers are bounds-checked.
Values we send are cleaned of NUL, CR and LF so no reply can smuggle a
second packet or a second SMTP line.
"""

from __future__ import annotations

import asyncio
import enum
import struct
from dataclasses import dataclass

#: the protocol version this implementation speaks
VERSION = 6
#: body chunks from the MTA are at most 64 KiB (libmilter's MILTER_CHUNK_SIZE)
#: unless a larger size was negotiated; headers and macros are far smaller
MAX_PACKET = 1024 * 1024 + 64
_LENGTH = struct.Struct(">I")


class ProtocolError(Exception):
    """The peer sent something the protocol does not allow; the session ends."""


class Command(bytes, enum.Enum):
    """Commands from the MTA (libmilter's ``SMFIC_*``)."""

    ABORT = b"A"
    BODY = b"B"
    CONNECT = b"C"
    MACRO = b"D"
    EOM = b"E"
    HELO = b"H"
    QUIT_NC = b"K"
    HEADER = b"L"
    MAIL = b"M"
    EOH = b"N"
    OPTNEG = b"O"
    QUIT = b"Q"
    RCPT = b"R"
    DATA = b"T"
    UNKNOWN = b"U"


class Reply(bytes, enum.Enum):
    """Replies and modifications to the MTA (``SMFIR_*``)."""

    ADDRCPT = b"+"
    DELRCPT = b"-"
    ACCEPT = b"a"
    REPLBODY = b"b"
    CONTINUE = b"c"
    DISCARD = b"d"
    CHGFROM = b"e"
    ADDHEADER = b"h"
    INSHEADER = b"i"
    CHGHEADER = b"m"
    OPTNEG = b"O"
    PROGRESS = b"p"
    QUARANTINE = b"q"
    REJECT = b"r"
    TEMPFAIL = b"t"
    REPLYCODE = b"y"


class Act(enum.IntFlag):
    """What the filter may do to a message (``SMFIF_*``), negotiated in OPTNEG."""

    ADDHDRS = 0x01
    CHGBODY = 0x02
    ADDRCPT = 0x04
    DELRCPT = 0x08
    CHGHDRS = 0x10
    QUARANTINE = 0x20
    CHGFROM = 0x40
    ADDRCPT_PAR = 0x80
    SETSYMLIST = 0x100


class Step(enum.IntFlag):
    """Protocol steps the MTA may skip or send without waiting (``SMFIP_*``)."""

    NOCONNECT = 0x1
    NOHELO = 0x2
    NOMAIL = 0x4
    NORCPT = 0x8
    NOBODY = 0x10
    NOHDRS = 0x20
    NOEOH = 0x40
    NR_HDR = 0x80
    NOUNKNOWN = 0x100
    NODATA = 0x200
    SKIP = 0x400
    RCPT_REJ = 0x800
    NR_CONN = 0x1000
    NR_HELO = 0x2000
    NR_MAIL = 0x4000
    NR_RCPT = 0x8000
    NR_DATA = 0x10000
    NR_UNKN = 0x20000
    NR_EOH = 0x40000
    NR_BODY = 0x80000
    HDR_LEADSPC = 0x100000


#: steps we never need: the MTA skips them altogether
SKIPPED = Step.NOUNKNOWN | Step.NODATA
#: steps we never answer before the end of the message: the MTA does not wait
NO_REPLY = (
    Step.NR_CONN
    | Step.NR_HELO
    | Step.NR_MAIL
    | Step.NR_RCPT
    | Step.NR_HDR
    | Step.NR_EOH
    | Step.NR_BODY
    | Step.NR_UNKN
    | Step.NR_DATA
)
#: what the command answers when its step is not in ``NO_REPLY``
REPLY_STEP: dict[Command, Step] = {
    Command.CONNECT: Step.NR_CONN,
    Command.HELO: Step.NR_HELO,
    Command.MAIL: Step.NR_MAIL,
    Command.RCPT: Step.NR_RCPT,
    Command.DATA: Step.NR_DATA,
    Command.HEADER: Step.NR_HDR,
    Command.EOH: Step.NR_EOH,
    Command.BODY: Step.NR_BODY,
    Command.UNKNOWN: Step.NR_UNKN,
}
#: the actions we may take: headers, quarantine (the MTA's hold queue)
WANTED_ACTIONS = Act.ADDHDRS | Act.CHGHDRS | Act.QUARANTINE


@dataclass(frozen=True, slots=True)
class Packet:
    command: bytes
    data: bytes


@dataclass(frozen=True, slots=True)
class Offer:
    """What the MTA offered in OPTNEG."""

    version: int
    actions: Act
    steps: Step


@dataclass(frozen=True, slots=True)
class Connect:
    hostname: str
    family: str  # "4", "6", "L" (unix socket) or "U" (unknown)
    port: int
    address: str


# --- framing ------------------------------------------------------------------------


async def read_packet(reader: asyncio.StreamReader, *, max_size: int = MAX_PACKET) -> Packet | None:
    """The next packet, or None when the peer closed the connection between packets.

    Raises :class:`ProtocolError` for a zero or oversized length and
    :class:`asyncio.IncompleteReadError` when the connection ends inside a packet.
    """
    try:
        head = await reader.readexactly(4)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise
    (length,) = _LENGTH.unpack(head)
    if length < 1:
        raise ProtocolError("packet of length 0")
    if length > max_size:
        raise ProtocolError(f"packet of {length} bytes is over the limit of {max_size}")
    body = await reader.readexactly(length)
    return Packet(body[:1], body[1:])


def encode(command: bytes, data: bytes = b"") -> bytes:
    """One packet on the wire."""
    return _LENGTH.pack(len(data) + 1) + command + data


def split_packets(buffer: bytes) -> tuple[list[Packet], bytes]:
    """Whole packets at the start of ``buffer`` and the incomplete rest (for clients and tests)."""
    packets: list[Packet] = []
    pos = 0
    while len(buffer) - pos >= 4:
        (length,) = _LENGTH.unpack_from(buffer, pos)
        if length < 1:
            raise ProtocolError("packet of length 0")
        if len(buffer) - pos - 4 < length:
            break
        start = pos + 4
        packets.append(Packet(buffer[start : start + 1], buffer[start + 1 : start + length]))
        pos = start + length
    return packets, buffer[pos:]


# --- parsing ------------------------------------------------------------------------


def parse_optneg(data: bytes) -> Offer:
    if len(data) < 12:
        raise ProtocolError(f"OPTNEG of {len(data)} bytes, expected at least 12")
    version, actions, steps = struct.unpack_from(">III", data)
    return Offer(version, Act(actions & 0x1FF), Step(steps & 0x1FFFFF))


def strings(data: bytes, *, command: str) -> list[bytes]:
    """NUL-terminated strings; the data must end with a NUL."""
    if not data.endswith(b"\0"):
        raise ProtocolError(f"{command}: missing NUL terminator")
    return data[:-1].split(b"\0")


def text(raw: bytes) -> str:
    """Protocol bytes as text: UTF-8 where valid, each other byte kept as one character."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def parse_macro(data: bytes) -> tuple[str, dict[str, str]]:
    """(the command the macros belong to, name -> value); names keep their braces."""
    if not data:
        raise ProtocolError("MACRO without a command code")
    stage = data[:1].decode("latin-1")
    rest = data[1:]
    if not rest:
        return stage, {}
    parts = strings(rest, command="MACRO")
    if len(parts) % 2:
        raise ProtocolError("MACRO: a name without a value")
    return stage, {text(parts[i]): text(parts[i + 1]) for i in range(0, len(parts), 2)}


def parse_connect(data: bytes) -> Connect:
    end = data.find(b"\0")
    if end < 0:
        raise ProtocolError("CONNECT: missing NUL after the host name")
    hostname = text(data[:end])
    rest = data[end + 1 :]
    if not rest:
        raise ProtocolError("CONNECT: missing address family")
    family = rest[:1].decode("latin-1")
    if family == "U":
        return Connect(hostname, family, 0, "")
    if family not in ("4", "6", "L"):
        raise ProtocolError(f"CONNECT: unknown address family {family!r}")
    if len(rest) < 3:
        raise ProtocolError("CONNECT: missing port")
    (port,) = struct.unpack_from(">H", rest, 1)
    (address,) = strings(rest[3:], command="CONNECT")[:1]
    return Connect(hostname, family, port, text(address))


def parse_header(data: bytes) -> tuple[str, bytes]:
    """(name, raw value): the value stays bytes, as it goes back into the message."""
    parts = strings(data, command="HEADER")
    if len(parts) != 2 or not parts[0]:
        raise ProtocolError("HEADER: expected a name and a value")
    return text(parts[0]), parts[1]


def parse_args(data: bytes, *, command: str) -> list[str]:
    """MAIL and RCPT: the address, then ESMTP parameters."""
    parts = strings(data, command=command)
    if not parts or not parts[0]:
        raise ProtocolError(f"{command}: missing address")
    return [text(p) for p in parts]


# --- replies ------------------------------------------------------------------------


def _clean(value: str, limit: int = 4000) -> bytes:
    cleaned = "".join(ch if ch not in "\0\r\n" else " " for ch in value)[:limit]
    return cleaned.encode("utf-8", "replace")


def optneg_reply(actions: Act, steps: Step) -> bytes:
    return encode(Reply.OPTNEG, struct.pack(">III", VERSION, int(actions), int(steps)))


def reply_code(line: str) -> bytes:
    """SMFIR_REPLYCODE: ``554 5.7.1 text``; a ``%`` is doubled (Sendmail formats it)."""
    return encode(Reply.REPLYCODE, _clean(line.replace("%", "%%")) + b"\0")


def add_header(name: str, value: str) -> bytes:
    return encode(Reply.ADDHEADER, _clean(name, 200) + b"\0" + _clean(value) + b"\0")


def change_header(index: int, name: str, value: str) -> bytes:
    """SMFIR_CHGHEADER: the ``index``-th (from 1) ``name`` field; an empty value deletes it."""
    return encode(
        Reply.CHGHEADER,
        struct.pack(">I", index) + _clean(name, 200) + b"\0" + _clean(value) + b"\0",
    )


def quarantine(reason: str) -> bytes:
    return encode(Reply.QUARANTINE, _clean(reason, 200) + b"\0")
