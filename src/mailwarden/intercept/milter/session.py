"""One milter connection: the protocol state machine from OPTNEG to QUIT.

The server creates a :class:`MilterSession` per connection from the MTA
and awaits :meth:`MilterSession.run`.  The session answers OPTNEG (version
6, asking the MTA to skip DATA and unknown commands and not to wait for
replies before the end of the message), keeps the macros, the client, the
envelope and the headers, and streams the message (header lines, a blank
line, the body) into a :class:`~mailwarden.intercept.spool.MessageSpool`,
memory first and an unlinked temporary file past ``spool_threshold``.

At EOM the shared pipeline runs in before-queue mode with one answer for
every recipient (``Answer.ONE_COPY``: the strictest recipient's outcome
applies to all; docs/milter.md says why not a temporary failure for a
split), and :mod:`.actions` turns the result into replies.  While the scan
runs, PROGRESS is sent every ``progress_interval`` seconds so the MTA's
own timeout does not fire on a large message.

ABORT drops the message and keeps the connection; QUIT_NC drops the
connection's state and waits for the next CONNECT on the same socket.

SECURITY: the input is hostile: packets are bounded (``MAX_PACKET``), the
message by ``max_message_size`` (then ``552``), silence by ``timeout``.
A malformed packet, an unknown command or a peer that vanishes ends the
session with one log line; the spool is closed on every path, and being
an unlinked file it cannot outlive the process either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from mailwarden.intercept.milter import protocol as p
from mailwarden.intercept.milter.actions import INTERNAL, TOO_BIG, replies
from mailwarden.intercept.milter.envelope import Facts, Macros, build_envelope
from mailwarden.intercept.milter.settings import MilterSettings
from mailwarden.intercept.pipeline import Answer, Pipeline
from mailwarden.intercept.spool import MessageSpool
from mailwarden.message import Message
from mailwarden.policy import Mode

log = logging.getLogger("mailwarden.intercept.milter")

#: macros kept per connection (all stages together), in bytes
MAX_MACROS = 64 * 1024
#: recipients kept per message; the MTA's own limit is normally far lower
MAX_RECIPIENTS = 10_000


class SessionEnd(Exception):
    """The session ends now (QUIT, a protocol error already logged)."""


@dataclass
class _Mail:
    """The message in progress."""

    spool: MessageSpool
    headers: list[tuple[str, bytes]]
    in_body: bool = False
    too_big: bool = False


class MilterSession:
    """See the module documentation."""

    def __init__(
        self,
        pipeline: Pipeline,
        settings: MilterSettings,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        host: str,
        peer: str = "",
    ) -> None:
        self.pipeline = pipeline
        self.settings = settings
        self.reader = reader
        self.writer = writer
        self.host = host
        self.peer = peer or "the MTA"
        self.allowed = p.Act(0)
        self.steps = p.Step(0)
        self.negotiated = False
        self.leading_space = False
        self.macros = Macros()
        self.facts = Facts()
        self.mail: _Mail | None = None
        self._warned: set[str] = set()

    # --- the loop -------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until QUIT, EOF or an error; never raises."""
        loop = asyncio.get_running_loop()
        try:
            # one timer moved forward per packet: far cheaper than a wait_for task each
            async with asyncio.timeout(None) as silence:
                while True:
                    silence.reschedule(loop.time() + self.settings.timeout)
                    packet = await p.read_packet(self.reader)
                    if packet is None:
                        if self.mail is not None:
                            log.warning("%s: closed the connection%s", self.peer, self._where())
                        return
                    silence.reschedule(None)  # the scan has its own limit
                    await self.dispatch(packet)
        except TimeoutError:
            log.warning(
                "%s: silent for %.0fs%s; closing", self.peer, self.settings.timeout, self._where()
            )
        except SessionEnd:
            return
        except p.ProtocolError as exc:
            log.warning("%s: protocol error: %s%s; closing", self.peer, exc, self._where())
        except asyncio.IncompleteReadError:
            log.warning("%s: connection closed inside a packet%s", self.peer, self._where())
        except (ConnectionError, BrokenPipeError) as exc:
            log.warning("%s: connection lost: %s%s", self.peer, exc, self._where())
        except Exception:  # a bug must cost one session, not the process
            log.exception("%s: internal error%s; closing", self.peer, self._where())
        finally:
            self.drop_message()
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def dispatch(self, packet: p.Packet) -> None:
        command = packet.command
        data = packet.data
        if command == p.Command.OPTNEG:
            await self.on_optneg(data)
            return
        if command == p.Command.MACRO:
            stage, values = p.parse_macro(data)
            if self.macros.size() + sum(len(k) + len(v) for k, v in values.items()) > MAX_MACROS:
                raise p.ProtocolError(f"more than {MAX_MACROS} bytes of macros")
            self.macros.update(stage, values)
            return
        if not self.negotiated:
            raise p.ProtocolError(f"command {_name(command)} before OPTNEG")
        if command == p.Command.CONNECT:
            info = p.parse_connect(data)
            self.facts = Facts(client_name=info.hostname or None)
            if info.family in ("4", "6") and info.address:
                self.facts.client_address = info.address
        elif command == p.Command.HELO:
            (helo,) = p.strings(data, command="HELO")[:1]
            self.facts.helo = p.text(helo)
        elif command == p.Command.MAIL:
            self.begin_message(p.parse_args(data, command="MAIL")[0])
        elif command == p.Command.RCPT:
            if len(self.facts.recipients) >= MAX_RECIPIENTS:
                raise p.ProtocolError(f"more than {MAX_RECIPIENTS} recipients")
            self.facts.recipients.append(p.parse_args(data, command="RCPT")[0])
        elif command == p.Command.HEADER:
            self.on_header(*p.parse_header(data))
        elif command == p.Command.EOH:
            self.write(self._current(), b"\r\n")
            self._current().in_body = True
        elif command == p.Command.BODY:
            self.on_body(data)
        elif command == p.Command.EOM:
            if data:
                self.on_body(data)
            await self.on_eom()
            return
        elif command == p.Command.ABORT:
            self.drop_message()
            return
        elif command == p.Command.QUIT:
            raise SessionEnd
        elif command == p.Command.QUIT_NC:
            self.drop_message()
            self.macros.clear()
            self.facts = Facts()
            return
        elif command not in (p.Command.DATA, p.Command.UNKNOWN):
            raise p.ProtocolError(f"unknown command {_name(command)}")
        await self.answer(command)

    async def answer(self, command: bytes) -> None:
        """CONTINUE, unless the MTA agreed not to wait for this command's reply."""
        step = p.REPLY_STEP.get(p.Command(command))
        if step is not None and step in self.steps:
            return
        self.writer.write(p.encode(p.Reply.CONTINUE))
        await self.writer.drain()

    # --- commands -------------------------------------------------------------------

    async def on_optneg(self, data: bytes) -> None:
        offer = p.parse_optneg(data)
        if offer.version < 2:
            raise p.ProtocolError(f"MTA speaks milter protocol version {offer.version}")
        self.allowed = p.WANTED_ACTIONS & offer.actions
        wanted = p.SKIPPED | p.NO_REPLY | p.Step.HDR_LEADSPC
        self.steps = wanted & offer.steps
        self.leading_space = p.Step.HDR_LEADSPC in self.steps
        self.negotiated = True
        self.writer.write(p.optneg_reply(self.allowed, self.steps))
        await self.writer.drain()

    def begin_message(self, sender: str) -> None:
        # not drop_message(): this message's MAIL macros arrived just before
        if self.mail is not None:
            self.mail.spool.close()
        self.facts.sender = sender
        self.facts.recipients = []
        self.mail = _Mail(MessageSpool(self.settings.spool_threshold), [])

    def on_header(self, name: str, value: bytes) -> None:
        mail = self._current()
        mail.headers.append((name, value))
        value = value.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        separator = b":" if self.leading_space or not value else b": "
        self.write(mail, name.encode("utf-8", "surrogateescape") + separator + value + b"\r\n")

    def on_body(self, data: bytes) -> None:
        mail = self._current()
        if not mail.in_body:
            # an MTA that skipped EOH (NOEOH) still needs the blank line
            self.write(mail, b"\r\n")
            mail.in_body = True
        self.write(mail, data)

    def write(self, mail: _Mail, data: bytes) -> None:
        if mail.too_big:
            return
        if mail.spool.size + len(data) > self.settings.max_message_size:
            mail.too_big = True
            mail.spool.discard()
            return
        mail.spool.write(data)

    async def on_eom(self) -> None:
        mail = self._current()
        try:
            packets = await self.finish(mail)
        finally:
            self.drop_message()
        self.writer.write(b"".join(packets))
        await self.writer.drain()

    async def finish(self, mail: _Mail) -> list[bytes]:
        envelope = build_envelope(
            self.facts,
            self.macros,
            network=self.pipeline.policy.network,
            submission_daemons=self.settings.submission_daemons,
        )
        if mail.too_big:
            log.warning(
                "queue id %s: over max_message_size (%d bytes): refused",
                envelope.queue_id,
                self.settings.max_message_size,
            )
            return [p.reply_code(TOO_BIG)]
        try:
            # a spilled message is read back from disk off the event loop
            spilled = mail.spool.spilled
            raw = await asyncio.to_thread(mail.spool.getvalue) if spilled else mail.spool.getvalue()
            work = asyncio.ensure_future(
                self.pipeline.process(
                    Message(raw, envelope), mode=Mode.BEFORE_QUEUE, answer=Answer.ONE_COPY
                )
            )
            while True:
                finished, _ = await asyncio.wait({work}, timeout=self.settings.progress_interval)
                if finished:
                    break
                self.writer.write(p.encode(p.Reply.PROGRESS))
                await self.writer.drain()
            done = work.result()
        except (ConnectionError, BrokenPipeError):
            raise
        except Exception:
            log.exception("queue id %s: cannot process the message", envelope.queue_id)
            return [p.reply_code(INTERNAL)]
        packets, warnings = replies(
            done,
            mail.headers,
            allowed=self.allowed,
            host=self.host,
            mta_hold=self.settings.mta_hold,
            leading_space=self.leading_space,
        )
        for warning in warnings:
            if warning not in self._warned:
                self._warned.add(warning)
                log.warning("%s: %s", self.peer, warning)
        return packets

    # --- state ----------------------------------------------------------------------

    def _current(self) -> _Mail:
        if self.mail is None:
            # headers or body without MAIL: Sendmail's non-SMTP path may omit it
            self.mail = _Mail(MessageSpool(self.settings.spool_threshold), [])
        return self.mail

    def drop_message(self) -> None:
        if self.mail is not None:
            self.mail.spool.close()
            self.mail = None
        self.macros.forget_message()

    def _where(self) -> str:
        if self.mail is None:
            return ""
        queue_id = self.macros.get("i")
        size = self.mail.spool.size
        what = f"queue id {queue_id}" if queue_id else "a message"
        return f" in the middle of {what} ({size} bytes received, nothing kept)"


def _name(command: bytes) -> str:
    try:
        return p.Command(command).name
    except ValueError:
        return repr(command)
