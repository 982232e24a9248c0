"""Run the shared pipeline once for the message on standard input.

::

    decision = judge(message, settings, config)
    decision.kind        # accept | tag | quarantine | reject | defer | discard
    decision.data        # the copy to deliver (tagged when the policy says so), or None
    decision.reply       # the policy's reply, for the one-line reason on stderr

The MDA is after the queue and answers once for every recipient it was
given, with one copy of the message: the pipeline runs in after-queue mode
with :attr:`Answer.ONE_COPY`.  A daemon that cannot be reached or does not
answer in time gives an ``error`` verdict, which the policy defers by
default; a store that cannot be written defers too (see ``pipeline``).

SECURITY: no scanning and no decision here: the daemon scans, the policy
decides, the action layer writes the quarantine and the headers.  One
connection to the daemon, closed before returning.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Protocol

from mailwarden.config import Config
from mailwarden.daemon.client import AsyncDaemonClient
from mailwarden.intercept.mda.settings import MdaSettings
from mailwarden.intercept.pipeline import Answer, Pipeline, Scanner
from mailwarden.message import Message
from mailwarden.policy import ActionKind, Mode, SmtpReply


class DaemonReach(Protocol):
    """How a one-shot agent reaches the daemon (MdaSettings, QmailSettings)."""

    @property
    def daemon_socket(self) -> str: ...
    @property
    def connect_timeout(self) -> float: ...
    @property
    def scan_timeout(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Decision:
    kind: ActionKind
    reply: SmtpReply
    data: bytes | None
    quarantine_id: str | None = None


def judge(
    message: Message,
    settings: MdaSettings | DaemonReach,
    config: Config,
    *,
    scanner: Scanner | None = None,
    mode: Mode = Mode.AFTER_QUEUE,
) -> Decision:
    """Scan, decide and act on ``message``; see the module documentation.

    ``mode``: after the queue for a delivery agent; qmail-queue runs before
    qmail-smtpd has answered, so it asks for the before-queue policy.
    """
    return asyncio.run(_judge(message, settings, config, scanner, mode))


async def _judge(
    message: Message,
    settings: DaemonReach,
    config: Config,
    scanner: Scanner | None,
    mode: Mode,
) -> Decision:
    client = None
    if scanner is None:
        client = AsyncDaemonClient(
            settings.daemon_socket,
            timeout=settings.scan_timeout,
            connect_timeout=settings.connect_timeout,
            reuse=False,
        )
        scanner = client
    try:
        pipeline = Pipeline.from_config(config, scanner, host=header_host(config))
        return await decide(pipeline, message, mode)
    finally:
        if client is not None:
            await client.close()


async def decide(pipeline: Pipeline, message: Message, mode: Mode = Mode.AFTER_QUEUE) -> Decision:
    """One message through ``pipeline`` (the mda agent keeps one for every request)."""
    done = await pipeline.process(message, mode=mode, answer=Answer.ONE_COPY)
    whole = done.action.whole
    data = done.deliveries[0][0] if done.deliveries else None
    return Decision(whole.kind, whole.reply, data, done.quarantine_id)


def header_host(config: Config) -> str:
    # gethostname, not getfqdn: a name lookup on every delivery could stall it
    return str(config["headers"]["hostname"]) or socket.gethostname()
