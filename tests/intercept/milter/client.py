"""A small MTA side of the milter protocol, to drive ``mailwarden milter`` in tests.

Usage::

    async with await MilterClient.open(address) as mta:     # "unix:/p" or "inet:PORT@HOST"
        await mta.negotiate()
        await mta.send_message(raw, sender="<a@x>", recipients=["<b@y>"],
                               macros={"i": "ABC123"})
        final, edits = mta.result                            # b"a", [Packet(b"h", ...)]

It speaks as Postfix 3.7 does: offers version 6, every action and every
protocol step, sends macros before each command, headers one by one, the
body in 64 KiB chunks, and waits for a reply only where the milter asked
for one.

SECURITY: test-only.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from types import TracebackType

from mailwarden.intercept.milter import protocol as p

ALL_ACTIONS = 0x1FF
ALL_STEPS = 0x1FFFFF
FINAL = {b"a", b"r", b"t", b"d", b"y", b"c"}


class MilterClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.steps = p.Step(0)
        self.actions = p.Act(0)
        self.result: tuple[bytes, list[p.Packet]] = (b"", [])

    @classmethod
    async def open(cls, address: str) -> MilterClient:
        if address.startswith("unix:"):
            reader, writer = await asyncio.open_unix_connection(address[5:])
        else:
            port, _, host = address[5:].partition("@")
            reader, writer = await asyncio.open_connection(host, int(port))
        return cls(reader, writer)

    async def __aenter__(self) -> MilterClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, BrokenPipeError):
            await self.writer.wait_closed()

    # --- raw -------------------------------------------------------------------------

    def send(self, command: bytes, data: bytes = b"") -> None:
        self.writer.write(p.encode(command, data))

    async def read(self, timeout: float = 60) -> p.Packet | None:
        return await asyncio.wait_for(p.read_packet(self.reader), timeout)

    async def command(self, command: p.Command, data: bytes = b"") -> p.Packet | None:
        """Send and, unless the milter agreed not to answer, read the reply."""
        self.send(command, data)
        await self.writer.drain()
        step = p.REPLY_STEP.get(command)
        if step is not None and step in self.steps:
            return None
        return await self.read()

    # --- the dialogue ---------------------------------------------------------------

    async def negotiate(
        self, *, version: int = 6, actions: int = ALL_ACTIONS, steps: int = ALL_STEPS
    ) -> p.Offer:
        self.send(p.Command.OPTNEG, struct.pack(">III", version, actions, steps))
        await self.writer.drain()
        reply = await self.read()
        assert reply is not None and reply.command == p.Reply.OPTNEG, reply
        offer = p.parse_optneg(reply.data)
        self.steps, self.actions = offer.steps, offer.actions
        return offer

    def macro(self, stage: bytes, values: dict[str, str]) -> None:
        data = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in values.items())
        self.send(p.Command.MACRO, stage + data)

    async def connect(
        self, hostname: str = "client.example", address: str = "192.0.2.1", port: int = 40000
    ) -> p.Packet | None:
        family = b"6" if ":" in address else b"4"
        data = hostname.encode() + b"\0" + family + struct.pack(">H", port) + address.encode()
        return await self.command(p.Command.CONNECT, data + b"\0")

    async def send_message(
        self,
        raw: bytes,
        *,
        sender: str = "<sender@remote.example>",
        recipients: tuple[str, ...] | list[str] = ("<alice@test.example>",),
        macros: dict[str, str] | None = None,
        connect: bool = True,
        client_address: str = "192.0.2.1",
        chunk: int = 65535,
    ) -> tuple[bytes, list[p.Packet]]:
        """One whole transaction; returns (final reply command, packets before it)."""
        macros = macros or {}
        if connect:
            self.macro(b"C", {"j": "mx.test.example", "{daemon_name}": "smtpd"})
            await self.connect(address=client_address)
            await self.command(p.Command.HELO, b"client.example\0")
        self.macro(b"M", {k: v for k, v in macros.items()})
        await self.command(p.Command.MAIL, sender.encode() + b"\0")
        for rcpt in recipients:
            await self.command(p.Command.RCPT, rcpt.encode() + b"\0")
        head, _, body = raw.partition(b"\r\n\r\n")
        for name, value in parse_headers(head):
            await self.command(p.Command.HEADER, name + b"\0" + value + b"\0")
        await self.command(p.Command.EOH)
        for start in range(0, len(body), chunk):
            await self.command(p.Command.BODY, body[start : start + chunk])
        self.send(p.Command.EOM)
        await self.writer.drain()
        self.result = await self.collect()
        return self.result

    async def collect(self) -> tuple[bytes, list[p.Packet]]:
        edits: list[p.Packet] = []
        while True:
            packet = await self.read()
            if packet is None:
                raise ConnectionError("milter closed the connection before its final reply")
            if packet.command == p.Reply.PROGRESS:
                continue
            if packet.command in FINAL:
                if packet.command == p.Reply.REPLYCODE:
                    edits.append(packet)
                return packet.command, edits
            edits.append(packet)

    async def quit(self) -> None:
        self.send(p.Command.QUIT)
        await self.writer.drain()


def parse_headers(head: bytes) -> list[tuple[bytes, bytes]]:
    """Header fields as the MTA sends them (HDR_LEADSPC: the value keeps its leading space)."""
    fields: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b"\n" + line)
        else:
            name, _, value = line.partition(b":")
            fields.append((name, value))
    return fields


def reply_text(edits: list[p.Packet]) -> str:
    for packet in edits:
        if packet.command == p.Reply.REPLYCODE:
            return packet.data.rstrip(b"\0").decode()
    return ""


def added_headers(edits: list[p.Packet]) -> dict[str, str]:
    out: dict[str, str] = {}
    for packet in edits:
        if packet.command == p.Reply.ADDHEADER:
            name, value = packet.data.rstrip(b"\0").split(b"\0")
            out[name.decode()] = value.decode().lstrip(" ")
    return out
