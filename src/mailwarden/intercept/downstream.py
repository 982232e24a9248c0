"""Hand accepted mail to the downstream SMTP server, and relay a dialogue to it.

Two uses of one connection class, :class:`DownstreamSession` (aiosmtplib
underneath):

* the after-queue filter calls :meth:`SmtpDownstream.deliver` once per
  delivery and gets one reply per recipient; idle connections are kept and
  reused, so a busy filter pays for a connect and EHLO once, not per message;
* the before-queue proxy drives a session step by step (``mail``, ``rcpt``,
  ``data``) and relays each reply to its client.

::

    downstream = SmtpDownstream("127.0.0.1", 10026, timeout=300, helo="mx1.example.org")
    replies = await downstream.deliver(data, Transaction(sender, rcpts, ...))
    replies["bob@example.org"]        # SmtpReply(250, "2.0.0", "Ok: queued as 4Xk...")

Nothing is ever reported delivered unless the downstream said 250 to the
end of DATA; a connection lost before that reply is a temporary failure
(the MTA retries; at worst a duplicate, never a loss).

SECURITY: the downstream is a trusted local server (the MTA's re-injection
port).  XFORWARD attributes are passed on only when it announces them, and
only values that passed :func:`~mailwarden.intercept.esmtp.parse_xforward`.
Needs no privileges.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiosmtplib

from mailwarden.intercept.esmtp import (
    XFORWARD_ATTRS,
    MailParams,
    RcptParams,
    make_reply,
    xtext_encode,
)
from mailwarden.policy import SmtpReply

log = logging.getLogger("mailwarden.intercept.downstream")

UNREACHABLE = SmtpReply(451, "4.4.1", "Downstream server unavailable; try again later")
LOST = SmtpReply(451, "4.4.2", "Connection to the downstream server lost; try again later")


class DownstreamError(Exception):
    """The session with the downstream failed; ``reply`` is what to tell the client."""

    def __init__(self, reply: SmtpReply) -> None:
        super().__init__(str(reply))
        self.reply = reply


@dataclass(frozen=True, slots=True)
class Transaction:
    """The envelope of one delivery, with the parameters to pass on."""

    sender: str
    recipients: tuple[str, ...]
    mail: MailParams = field(default_factory=MailParams)
    rcpt: Mapping[str, RcptParams] = field(default_factory=dict)
    xforward: Mapping[str, str | None] = field(default_factory=dict)


class DownstreamSession:
    """One SMTP connection to the downstream; every method returns the server's reply."""

    def __init__(self, host: str, port: int, *, timeout: float, helo: str) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.helo = helo
        self.extensions: frozenset[str] = frozenset()
        self.xforward_attrs: frozenset[str] = frozenset()
        self._smtp: aiosmtplib.SMTP | None = None
        self.in_transaction = False
        #: DATA was started on this connection: a failure now may have delivered
        self.data_started = False

    @property
    def connected(self) -> bool:
        return self._smtp is not None and self._smtp.is_connected

    async def open(self) -> None:
        """Connect and EHLO; raises :class:`DownstreamError` (UNREACHABLE)."""
        smtp = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            timeout=self.timeout,
            local_hostname=self.helo,
            start_tls=False,
        )
        try:
            await smtp.connect()
            await smtp.ehlo()
        except (aiosmtplib.SMTPException, OSError) as exc:
            log.warning("downstream %s:%s unreachable: %s", self.host, self.port, exc)
            smtp.close()
            raise DownstreamError(UNREACHABLE) from exc
        self._smtp = smtp
        self.extensions = frozenset(k.upper() for k in smtp.esmtp_extensions)
        xf = smtp.esmtp_extensions.get("xforward", "")
        self.xforward_attrs = frozenset(a.upper() for a in xf.split())

    def _client(self) -> aiosmtplib.SMTP:
        if self._smtp is None or not self._smtp.is_connected:
            raise DownstreamError(LOST)
        return self._smtp

    async def xforward(self, attrs: Mapping[str, str | None]) -> None:
        """Send what the downstream accepts of ``attrs``; a refusal is only logged."""
        words = [
            f"{k}={xtext_encode(v) if v is not None else '[UNAVAILABLE]'}"
            for k, v in attrs.items()
            if k in self.xforward_attrs and k in XFORWARD_ATTRS
        ]
        # one command per attribute keeps each line far below 512 bytes
        for word in words:
            reply = await self._command(b"XFORWARD", word.encode("ascii"))
            if reply.code != 250:
                log.warning("downstream refused XFORWARD %s: %s", word.split("=")[0], reply)

    async def mail(self, sender: str, params: MailParams) -> SmtpReply:
        smtp = self._client()
        encoding = "utf-8" if params.smtputf8 else "ascii"
        try:
            response = await smtp.mail(
                sender, options=params.for_downstream(self.extensions), encoding=encoding
            )
        except aiosmtplib.SMTPResponseException as exc:
            return make_reply(exc.code, exc.message)
        except (aiosmtplib.SMTPException, OSError, UnicodeError) as exc:
            raise self._lost(exc) from exc
        self.in_transaction = True
        return make_reply(response.code, response.message)

    async def rcpt(self, recipient: str, params: RcptParams, *, utf8: bool = False) -> SmtpReply:
        smtp = self._client()
        try:
            response = await smtp.rcpt(
                recipient,
                options=params.for_downstream(self.extensions),
                encoding="utf-8" if utf8 else "ascii",
            )
        except aiosmtplib.SMTPResponseException as exc:
            return make_reply(exc.code, exc.message)
        except (aiosmtplib.SMTPException, OSError, UnicodeError) as exc:
            raise self._lost(exc) from exc
        return make_reply(response.code, response.message)

    async def data(self, data: bytes) -> SmtpReply:
        smtp = self._client()
        self.data_started = True
        try:
            start = await smtp.execute_command(b"DATA")
            if start.code != 354:
                self.in_transaction = False
                return make_reply(start.code, start.message)
            # aiosmtplib's data() rewrites every line end with a regular expression;
            # the message is already CRLF throughout, so stuffing is one replace
            protocol = smtp.protocol
            if protocol is None:
                raise aiosmtplib.SMTPServerDisconnected("connection lost")
            protocol.write(dot_stuff(data))
            protocol.write(b".\r\n")
            response = await protocol.read_response(timeout=self.timeout)
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise self._lost(exc) from exc
        self.in_transaction = False
        return make_reply(response.code, response.message)

    async def rset(self) -> None:
        """End a transaction without delivering; a failure closes the connection."""
        if not self.connected:
            return
        try:
            await self._client().rset()
            self.in_transaction = False
        except (aiosmtplib.SMTPException, OSError, DownstreamError):
            self.close()

    async def quit(self) -> None:
        if self._smtp is not None and self._smtp.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await self._smtp.quit()
        self.close()

    def close(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
        self._smtp = None
        self.in_transaction = False

    async def _command(self, *args: bytes) -> SmtpReply:
        try:
            response = await self._client().execute_command(*args)
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise self._lost(exc) from exc
        return make_reply(response.code, response.message)

    def _lost(self, exc: BaseException) -> DownstreamError:
        log.warning("downstream %s:%s: %s", self.host, self.port, exc)
        self.close()
        return DownstreamError(LOST)


_LINE_END = re.compile(rb"\r\n|\r|\n")


def dot_stuff(data: bytes) -> bytes:
    """``data`` as DATA content: CRLF line ends, a dot doubled at each line start,
    a final CRLF (the caller sends the terminating ``.<CRLF>``)."""
    if data.count(b"\n") != data.count(b"\r\n") or data.count(b"\r") != data.count(b"\r\n"):
        data = _LINE_END.sub(b"\r\n", data)
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    return data if not data or data.endswith(b"\r\n") else data + b"\r\n"


class SmtpDownstream:
    """Deliveries to one SMTP server over a small pool of reused connections."""

    def __init__(
        self, host: str, port: int, *, timeout: float, helo: str, max_idle: int = 16
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.helo = helo
        self.max_idle = max_idle
        self._idle: list[DownstreamSession] = []

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    async def deliver(self, data: bytes, txn: Transaction) -> dict[str, SmtpReply]:
        """Send one message; the reply for each recipient of ``txn``."""
        for attempt in (1, 2):
            try:
                session, reused = await self._checkout()
            except DownstreamError as exc:
                return dict.fromkeys(txn.recipients, exc.reply)
            session.data_started = False
            try:
                replies = await self._transaction(session, data, txn)
            except DownstreamError as exc:
                session.close()
                # a pooled connection the server closed meanwhile fails at once;
                # before DATA nothing was delivered, so a fresh one may try again
                if reused and attempt == 1 and not session.data_started:
                    continue
                return dict.fromkeys(txn.recipients, exc.reply)
            except BaseException:
                session.close()
                raise
            self._checkin(session)
            return replies
        return dict.fromkeys(txn.recipients, LOST)  # pragma: no cover - loop returns

    async def _transaction(
        self, session: DownstreamSession, data: bytes, txn: Transaction
    ) -> dict[str, SmtpReply]:
        if txn.xforward and session.xforward_attrs:
            await session.xforward(txn.xforward)
        reply = await session.mail(txn.sender, txn.mail)
        if reply.code != 250:
            await session.rset()
            return dict.fromkeys(txn.recipients, reply)
        replies: dict[str, SmtpReply] = {}
        accepted: list[str] = []
        for rcpt in txn.recipients:
            r = await session.rcpt(rcpt, txn.rcpt.get(rcpt, RcptParams()), utf8=txn.mail.smtputf8)
            replies[rcpt] = r
            if r.code in (250, 251):
                accepted.append(rcpt)
        if not accepted:
            await session.rset()
            return replies
        final = await session.data(data)
        for rcpt in accepted:
            replies[rcpt] = final
        return replies

    async def _checkout(self) -> tuple[DownstreamSession, bool]:
        while self._idle:
            session = self._idle.pop()
            if session.connected:
                return session, True
            session.close()
        session = DownstreamSession(self.host, self.port, timeout=self.timeout, helo=self.helo)
        await session.open()  # DownstreamError propagates: the caller answers 4xx
        return session, False

    def _checkin(self, session: DownstreamSession) -> None:
        if session.connected and not session.in_transaction and len(self._idle) < self.max_idle:
            self._idle.append(session)
        else:
            session.close()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for session in idle:
            await session.quit()
