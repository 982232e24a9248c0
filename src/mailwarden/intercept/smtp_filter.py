"""``mailwarden smtp-filter``: the after-queue content filter (Postfix ``content_filter``).

The MTA has queued the mail and hands it over by SMTP or LMTP.  For each
message the handler runs the shared :mod:`~mailwarden.intercept.pipeline`
(after-queue mode, so a reject becomes ``[policy] after_queue_reject``),
re-injects every delivered copy into the downstream, and only then answers:

* SMTP: one reply.  250 when every recipient was delivered, quarantined or
  discarded; the first temporary failure otherwise (the MTA retries the
  whole message: a recipient already delivered may get a duplicate, nobody
  loses the mail); a permanent failure when nothing was temporary.
* LMTP (``--lmtp``): one reply per recipient, so each recipient's policy and
  each downstream answer reach the MTA exactly.

::

    agent = await start_filter(settings, config)        # listening
    await agent.stop()

SECURITY: the MTA is the only client (loopback by default).  The daemon
does the scanning in its own processes; this process holds each message
(bounded by ``max_message_size``) and writes the quarantine store.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from mailwarden.config import Config
from mailwarden.daemon import AsyncDaemonClient
from mailwarden.intercept.downstream import SmtpDownstream, Transaction
from mailwarden.intercept.handler import AgentHandler, build_message
from mailwarden.intercept.maildir import MaildirDownstream
from mailwarden.intercept.pipeline import Answer, Pipeline, Scanner
from mailwarden.intercept.runner import run
from mailwarden.intercept.server import AgentEnvelope, AgentServer
from mailwarden.intercept.settings import SmtpSettings
from mailwarden.policy import Mode, SmtpReply


class Downstream(Protocol):
    async def deliver(self, data: bytes, txn: Transaction) -> dict[str, SmtpReply]: ...

    async def close(self) -> None: ...


class FilterHandler(AgentHandler):
    """aiosmtpd handler of the after-queue filter."""

    def __init__(
        self, pipeline: Pipeline, downstream: Downstream, *, lmtp: bool, xforward: bool
    ) -> None:
        self.pipeline = pipeline
        self.downstream = downstream
        self.lmtp = lmtp
        self.xforward = xforward
        #: the files the configuration came from, read again on SIGHUP
        self.config_files: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: AgentEnvelope) -> str:
        message = build_message(envelope, agent="smtp-filter")
        done = await self.pipeline.process(
            message,
            mode=Mode.AFTER_QUEUE,
            answer=Answer.PER_RECIPIENT if self.lmtp else Answer.PER_MESSAGE,
        )
        action = done.action
        replies: dict[str, SmtpReply] = {}
        for data, rcpts in done.deliveries:
            txn = Transaction(
                sender=envelope.mail_from or "",
                recipients=rcpts,
                mail=envelope.params,
                rcpt={r: envelope.rcpt_params[r] for r in rcpts if r in envelope.rcpt_params},
                xforward=envelope.xforward if self.xforward else {},
            )
            replies.update(await self.downstream.deliver(data, txn))
        final = [replies.get(r) or action.for_recipient(r).reply for r in envelope.rcpt_tos]
        if self.lmtp:
            return "\r\n".join(str(r) for r in final)
        delivered = [replies[r] for r in envelope.rcpt_tos if r in replies]
        return str(merge(final, prefer=delivered))

    def reload(self) -> None:
        self.pipeline.reload_from(self.config_files)

    async def close(self) -> None:
        await self.downstream.close()
        scanner = self.pipeline.scanner
        if isinstance(scanner, AsyncDaemonClient):
            await scanner.close()


def merge(replies: Sequence[SmtpReply], *, prefer: Sequence[SmtpReply] = ()) -> SmtpReply:
    """One SMTP reply for a message: any temporary failure, else any permanent one, else 250.

    With everything accepted, the downstream's own reply (``queued as ...``)
    is preferred so the MTA's log names where the message went.
    """
    for reply in replies:
        if reply.temporary:
            return reply
    for reply in replies:
        if reply.permanent:
            return reply
    return prefer[0] if prefer else replies[0]


def make_downstream(settings: SmtpSettings) -> Downstream:
    target = settings.downstream
    if target.kind == "maildir":
        maildir = MaildirDownstream(Path(target.path))
        maildir.prepare()
        return maildir
    return SmtpDownstream(
        target.host, target.port, timeout=settings.downstream_timeout, helo=settings.hostname
    )


def header_host(config: Config) -> str:
    return str(config["headers"]["hostname"]) or socket.getfqdn()


async def start_filter(
    settings: SmtpSettings, config: Config, *, scanner: Scanner | None = None
) -> AgentServer:
    """Build the filter from its settings and start listening."""
    scanner = scanner or AsyncDaemonClient(settings.daemon_socket, timeout=settings.scan_timeout)
    pipeline = Pipeline.from_config(config, scanner, host=header_host(config))
    handler = FilterHandler(
        pipeline, make_downstream(settings), lmtp=settings.lmtp, xforward=settings.xforward
    )
    handler.config_files = list(config.files)
    agent = AgentServer(settings, handler, lmtp=settings.lmtp, xforward=settings.xforward)
    await agent.start()
    return agent


def run_filter(settings: SmtpSettings, config: Config) -> int:
    """The ``mailwarden smtp-filter`` process: serve until SIGTERM."""
    where = f"{settings.listen_host}:{settings.listen_port} -> {settings.downstream}"
    mode = " (LMTP)" if settings.lmtp else ""
    return run(
        lambda: start_filter(settings, config),
        name="smtp-filter" + mode,
        where=where,
        config=config,
    )
