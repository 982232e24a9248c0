"""The SMTP/LMTP protocol engine of the agents: aiosmtpd with the parts a gateway needs.

aiosmtpd does the dialogue; :class:`AgentSMTP` changes what a filter in the
mail path needs changed and calls the handler's hooks as aiosmtpd does:

* DATA is streamed into a :class:`~mailwarden.intercept.spool.MessageSpool`
  (memory, then an unlinked file) instead of a list of lines, with lines of
  any length and bare LF accepted; a message over SIZE gets ``552`` after
  the terminating dot, nothing of it kept;
* MAIL and RCPT take the DSN parameters (RET, ENVID, NOTIFY, ORCPT) and keep
  their case, so they can be passed on; at most ``max_recipients`` RCPTs;
* ``XFORWARD`` (Postfix's client attributes), and PIPELINING, DSN and
  XFORWARD announced in the EHLO reply beside SIZE, 8BITMIME and SMTPUTF8;
* a cap on concurrent sessions (``421``), and the idle timer kept alive
  while a long DATA is flowing and while the message is being processed;
* a client that shuts down its side after the final dot (QUIT pipelined
  behind it, as Exim does) still gets the message's reply; the session
  ends after it.  aiosmtpd alone would drop the message being processed.

A handler gets the session (:class:`AgentSession`) and the envelope
(:class:`AgentEnvelope`, with ``spool``, ``params``, ``rcpt_params`` and
``xforward``)::

    server = await listen(lambda: AgentSMTP(handler, settings=s, sessions=count), host, port)

:class:`AgentLMTP` is the same over LMTP (LHLO; the handler returns one reply
line per recipient from ``handle_DATA``).

SECURITY: everything read here is hostile.  Lines and messages are bounded
(``max_line_length``, ``max_message_size``), an idle client is dropped after
``timeout``, command lines over 512 bytes get ``500``.  XFORWARD changes
audit trails, so it is offered only when configured and the agent listens on
loopback by default (the MTA is its only client).  Listening on an
unprivileged port needs no privileges.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session

from mailwarden.intercept.esmtp import (
    XFORWARD_ATTRS,
    MailParams,
    ParamError,
    RcptParams,
    parse_mail_params,
    parse_rcpt_params,
    parse_xforward,
)
from mailwarden.intercept.settings import SmtpSettings
from mailwarden.intercept.spool import DataStatus, MessageSpool, read_data

log = logging.getLogger("mailwarden.intercept.server")

#: ESMTP keywords added to aiosmtpd's own (SIZE, 8BITMIME, SMTPUTF8)
EXTENSIONS = ("PIPELINING", "DSN")
#: the MAIL line grows with SIZE, BODY, SMTPUTF8, RET and ENVID (RFC 3461: +100)
_MAIL_LIMIT = 512 + 26 + 10 + 100 + 20
_RCPT_LIMIT = 512 + 500


class AgentSession(Session):
    """aiosmtpd's session plus what a handler keeps across transactions."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        #: handler-owned state (the proxy's downstream connection)
        self.state: dict[str, Any] = {}


class AgentEnvelope(Envelope):
    """aiosmtpd's envelope plus parsed parameters, XFORWARD and the spooled data."""

    def __init__(self) -> None:
        super().__init__()
        self.params = MailParams()
        self.rcpt_params: dict[str, RcptParams] = {}
        self.xforward: dict[str, str | None] = {}
        self.spool: MessageSpool | None = None
        #: the parameters of the MAIL/RCPT being decided by a hook
        self.pending: MailParams | RcptParams | None = None


class _Limits(dict[str, int]):
    """Command line limits that aiosmtpd's EHLO cannot grow (it adds to them per EHLO)."""

    def __missing__(self, key: str) -> int:
        return SMTP.command_size_limit

    def __setitem__(self, key: str, value: int) -> None:
        return None

    def clear(self) -> None:
        return None


class SessionCount:
    """Sessions open now, shared by every protocol instance of one listener."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self.idle = asyncio.Event()
        self.idle.set()


class AgentSMTP(SMTP):
    """See the module documentation."""

    def __init__(
        self,
        handler: Any,
        *,
        settings: SmtpSettings,
        sessions: SessionCount,
        xforward: bool = True,
    ) -> None:
        # aiosmtpd sizes its stream reader from this attribute in __init__
        self.line_length_limit = settings.max_line_length
        super().__init__(
            handler,
            data_size_limit=settings.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=settings.hostname,
            ident="ESMTP mailwarden",
            timeout=settings.timeout,
            loop=asyncio.get_running_loop(),
        )
        limits = _Limits()
        dict.update(limits, {"MAIL": _MAIL_LIMIT, "RCPT": _RCPT_LIMIT})
        self.command_size_limits = limits
        self.settings = settings
        self.sessions = sessions
        self.offer_xforward = xforward
        #: between DATA's 354 and its reply, and whether the client ended its side in it
        self._in_data = False
        self._eof_in_data = False

    # --- aiosmtpd factories -------------------------------------------------------------

    def _create_session(self) -> AgentSession:
        return AgentSession(self.loop)

    def _create_envelope(self) -> AgentEnvelope:
        return AgentEnvelope()

    def agent_envelope(self) -> AgentEnvelope:
        envelope = self.envelope
        if not isinstance(envelope, AgentEnvelope):
            raise TypeError("the session has no agent envelope")
        return envelope

    def _set_post_data_state(self) -> None:
        self.envelope = self._create_envelope()

    def extensions(self) -> list[str]:
        """Keywords to add to the EHLO reply."""
        words = list(EXTENSIONS)
        if self.offer_xforward:
            words.append("XFORWARD " + " ".join(XFORWARD_ATTRS))
        return words

    # --- sessions -----------------------------------------------------------------------

    async def _handle_client(self) -> None:
        if self.sessions.active >= self.sessions.limit:
            await self.push("421 4.3.2 Too many sessions, try again later")
            if self.transport is not None:
                self.transport.close()
            return
        self.sessions.active += 1
        self.sessions.idle.clear()
        try:
            await super()._handle_client()
        finally:
            self.sessions.active -= 1
            if self.sessions.active == 0:
                self.sessions.idle.set()
            closer = getattr(self.event_handler, "session_closed", None)
            if closer is not None and isinstance(self.session, AgentSession):
                await closer(self.session)

    def eof_received(self) -> bool | None:
        if self._in_data and self.session is not None and self.session.ssl is None:
            # A client may pipeline QUIT after the final dot and shut down its sending side
            # (Exim's smtp transport does when nothing else waits for the host).  aiosmtpd
            # would cancel the session, and the message with it: the client would see the
            # connection closed instead of the reply.  The reader gets the end of input;
            # the session ends once the message has its reply.
            self._eof_in_data = True
            return asyncio.StreamReaderProtocol.eof_received(self)
        return super().eof_received()

    async def _end_session(self) -> None:
        """End the session the way aiosmtpd ends one whose client went away."""
        if self._handler_coroutine is not None:
            self._handler_coroutine.cancel()
        await asyncio.sleep(0)

    # --- commands -----------------------------------------------------------------------

    async def smtp_EHLO(self, hostname: str) -> None:
        await super().smtp_EHLO(hostname)
        if hostname and self.session is not None:
            self.session.host_name = hostname

    async def smtp_XFORWARD(self, arg: str | None) -> None:
        if not self.offer_xforward:
            await self.push('500 Error: command "XFORWARD" not recognized')
            return
        if await self.check_helo_needed("EHLO"):
            return
        envelope = self.agent_envelope()
        if envelope.mail_from is not None:
            await self.push("503 5.5.1 Error: XFORWARD inside a mail transaction")
            return
        try:
            attrs = parse_xforward(arg or "")
        except ParamError as exc:
            await self.push(exc.reply)
            return
        envelope.xforward.update(attrs)
        await self.push("250 2.0.0 Ok")

    async def smtp_MAIL(self, arg: str | None) -> None:
        if await self.check_helo_needed():
            return
        envelope = self.agent_envelope()
        syntax = "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]"
        rest = self._strip_command_keyword("FROM:", arg or "")
        if rest is None:
            await self.push(syntax)
            return
        if envelope.mail_from is not None:
            await self.push("503 5.5.1 Error: nested MAIL command")
            return
        address, words = _split_address(rest)
        if address is None:
            await self.push("553 5.1.3 Error: malformed address")
            return
        if words and not (self.session is not None and self.session.extended_smtp):
            await self.push(syntax)
            return
        try:
            params = parse_mail_params(words)
        except ParamError as exc:
            await self.push(exc.reply)
            return
        if params.size is not None and params.size > self.settings.max_message_size:
            await self.push("552 5.3.4 Message size exceeds fixed maximum message size")
            return
        envelope.pending = params
        status = await self._call_handler_hook("MAIL", address, words)
        envelope.pending = None
        if status is MISSING or str(status).startswith("2"):
            envelope.mail_from = address
            envelope.mail_options.extend(words)
            envelope.smtp_utf8 = params.smtputf8
            envelope.params = params
        await self.push("250 2.1.0 Ok" if status is MISSING else status)

    async def smtp_RCPT(self, arg: str | None) -> None:
        if await self.check_helo_needed():
            return
        envelope = self.agent_envelope()
        if envelope.mail_from is None:
            await self.push("503 5.5.1 Error: need MAIL command")
            return
        rest = self._strip_command_keyword("TO:", arg or "")
        if rest is None:
            await self.push("501 5.5.4 Syntax: RCPT TO:<address> [parameters]")
            return
        address, words = _split_address(rest)
        if not address:
            await self.push("553 5.1.3 Error: malformed address")
            return
        if len(envelope.rcpt_tos) >= self.settings.max_recipients:
            await self.push("452 4.5.3 Error: too many recipients")
            return
        try:
            params = parse_rcpt_params(words)
        except ParamError as exc:
            await self.push(exc.reply)
            return
        envelope.pending = params
        status = await self._call_handler_hook("RCPT", address, words)
        envelope.pending = None
        if status is MISSING or str(status).startswith("2"):
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(words)
            envelope.rcpt_params[address] = params
        await self.push("250 2.1.5 Ok" if status is MISSING else status)

    async def smtp_DATA(self, arg: str | None) -> None:
        if await self.check_helo_needed():
            return
        envelope = self.agent_envelope()
        if not envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        spool = MessageSpool(self.settings.spool_threshold)
        self._in_data = True
        try:
            try:
                status = await read_data(
                    self._reader,
                    spool,
                    max_size=self.settings.max_message_size,
                    alive=self._reset_timeout,
                )
            except asyncio.IncompleteReadError:
                # the input ended before the final dot: nothing of the message is taken
                log.info("%s: input ended inside DATA", self.session and self.session.peer)
                await self._end_session()
                return
            if status is DataStatus.TOO_BIG:
                log.info(
                    "%s: message over %d bytes refused",
                    self.session and self.session.peer,
                    self.settings.max_message_size,
                )
                self._set_post_data_state()
                await self.push("552 5.3.4 Error: message too big")
                if self._eof_in_data:
                    await self._end_session()
                return
            envelope.spool = spool
            # scanning and delivery may take longer than a silent client is allowed
            self._reset_timeout(
                self.settings.scan_timeout + 2 * self.settings.downstream_timeout + 60
            )
            try:
                reply = await self._call_handler_hook("DATA")
            except Exception:
                # whatever broke, the MTA keeps the message and tries again
                log.exception("processing a message failed")
                reply = "451 4.3.0 Internal error; try again later"
            self._reset_timeout()
        finally:
            spool.close()
            self._in_data = False
        self._set_post_data_state()
        await self.push("250 2.0.0 Ok" if reply is MISSING else reply)
        if self._eof_in_data:
            await self._end_session()


class AgentLMTP(LMTP, AgentSMTP):
    """:class:`AgentSMTP` over LMTP: LHLO, and a reply per recipient after DATA."""


def _split_address(text: str) -> tuple[str | None, list[str]]:
    """``<a@b> SIZE=1`` -> ("a@b", ["SIZE=1"]); ``<>`` is the null sender ("")."""
    text = text.strip()
    if text.startswith("<"):
        end = text.find(">")
        if end < 0:
            return None, []
        address, rest = text[1:end], text[end + 1 :]
        if rest and not rest[0].isspace():
            return None, []
    else:
        address, _, rest = text.partition(" ")
    address = address.strip()
    if address.startswith("@") and ":" in address:
        address = address.split(":", 1)[1]  # source route (RFC 5321 C), ignored
    if any(c.isspace() or ord(c) < 32 or c in "<>" for c in address) or len(address) > 320:
        return None, []
    return address, rest.split()


async def listen(factory: Callable[[], SMTP], host: str, port: int) -> asyncio.Server:
    """Open the listening socket; raises OSError when it cannot."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(factory, host=host, port=port, reuse_address=True)


class AgentServer:
    """One listening agent: its socket, its sessions, and an orderly stop.

    ``handler`` may define ``async close()`` (called at stop),
    ``async session_closed(session)`` (called when a client goes away) and
    ``reload()`` (SIGHUP).
    """

    def __init__(
        self, settings: SmtpSettings, handler: Any, *, lmtp: bool = False, xforward: bool = True
    ) -> None:
        self.settings = settings
        self.handler = handler
        self.lmtp = lmtp
        self.xforward = xforward
        self.sessions = SessionCount(settings.max_sessions)
        self._server: asyncio.Server | None = None

    def _protocol(self) -> SMTP:
        cls = AgentLMTP if self.lmtp else AgentSMTP
        return cls(
            self.handler, settings=self.settings, sessions=self.sessions, xforward=self.xforward
        )

    async def start(self) -> None:
        self._server = await listen(
            self._protocol, self.settings.listen_host, self.settings.listen_port
        )

    @property
    def port(self) -> int:
        """The bound port (useful when the configured one was 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the agent is not listening")
        return int(self._server.sockets[0].getsockname()[1])

    def reload(self) -> None:
        reloader = getattr(self.handler, "reload", None)
        if reloader is not None:
            reloader()

    async def stop(self, grace: float = 30.0) -> None:
        """Stop listening, let running sessions finish for ``grace`` seconds, then close."""
        if self._server is not None:
            self._server.close()
            try:
                await asyncio.wait_for(self.sessions.idle.wait(), grace)
            except TimeoutError:
                log.warning("%d sessions still open at shutdown", self.sessions.active)
            self._server = None
        closer = getattr(self.handler, "close", None)
        if closer is not None:
            await closer()
