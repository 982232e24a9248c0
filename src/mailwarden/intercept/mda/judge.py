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

from mailwarden.config import Config
from mailwarden.daemon.client import AsyncDaemonClient
from mailwarden.intercept.mda.settings import MdaSettings
from mailwarden.intercept.pipeline import Answer, Pipeline, Scanner
from mailwarden.message import Message
from mailwarden.policy import ActionKind, Mode, SmtpReply


@dataclass(frozen=True, slots=True)
class Decision:
    kind: ActionKind
    reply: SmtpReply
    data: bytes | None
    quarantine_id: str | None = None


def judge(
    message: Message, settings: MdaSettings, config: Config, *, scanner: Scanner | None = None
) -> Decision:
    """Scan, decide and act on ``message``; see the module documentation."""
    return asyncio.run(_judge(message, settings, config, scanner))


async def _judge(
    message: Message, settings: MdaSettings, config: Config, scanner: Scanner | None
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
        done = await pipeline.process(message, mode=Mode.AFTER_QUEUE, answer=Answer.ONE_COPY)
    finally:
        if client is not None:
            await client.close()
    whole = done.action.whole
    data = done.deliveries[0][0] if done.deliveries else None
    return Decision(whole.kind, whole.reply, data, done.quarantine_id)


def header_host(config: Config) -> str:
    # gethostname, not getfqdn: a name lookup on every delivery could stall it
    return str(config["headers"]["hostname"]) or socket.gethostname()
