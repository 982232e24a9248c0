"""The one sequence every interception agent runs for a message.

Release mark -> daemon verdict -> policy -> actions, with every failure on
the way turned into the policy's answer for an error (defer by default), so
an agent only translates the result into its protocol::

    pipeline = Pipeline.from_config(config, AsyncDaemonClient(socket))
    done = await pipeline.process(message, mode=Mode.AFTER_QUEUE,
                                  answer=Answer.PER_MESSAGE)
    done.action.whole.reply       # what to tell the MTA or client
    done.deliveries               # ((bytes, recipients), ...) to hand on

``answer`` says how the agent can reply (see :class:`Answer`); the pipeline
reshapes the policy's per-recipient outcomes to fit, so that, for example,
a deferral for one recipient never leaves another one's copy delivered
while the MTA is told to retry them both.

Agents never scan and never decide: the milter, the MDA, the download
proxies, qmail and ZMailer agents reuse this module as the SMTP agents do.

SECURITY: the message is untrusted; the release mark is believed only after
its HMAC verifies (``actions.release``).  The release secret is read only
when a message carries a mark.  Quarantine copies are written in a worker
thread, so a slow disk cannot stall other sessions' protocol; the one
history row of every other message is written in line.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from mailwarden.actions import Done, carry_out, check_mark, load_secret
from mailwarden.actions.release import ReleaseError
from mailwarden.config import Config, defaults, load_config
from mailwarden.errors import MailwardenError
from mailwarden.message import Envelope, Message
from mailwarden.metrics import record as metrics_record
from mailwarden.notify import Notifier
from mailwarden.policy import Action, ActionKind, Mode, Outcome, Policy, SmtpReply, decide
from mailwarden.store import QuarantineStore, open_store
from mailwarden.verdict import Status, Verdict

log = logging.getLogger("mailwarden.intercept.pipeline")

_MARK = re.compile(rb"^x-mailwarden-release[ \t]*:", re.IGNORECASE | re.MULTILINE)
_STORE_FAILED = SmtpReply(451, "4.3.0", "Quarantine unavailable; try again later")


class Scanner(Protocol):
    """What the pipeline needs of the daemon client (``AsyncDaemonClient``)."""

    async def scan_bytes(
        self, data: bytes | memoryview, envelope: Envelope | None = None
    ) -> Verdict: ...


class Answer(enum.Enum):
    """How an agent can answer for a message with several recipients."""

    #: one reply per recipient (LMTP, an MDA run once per recipient)
    PER_RECIPIENT = "per-recipient"
    #: one reply for all, but each recipient's copy may differ (after-queue
    #: SMTP): a defer or reject for anyone becomes the answer for everyone
    PER_MESSAGE = "per-message"
    #: one reply and one copy for all (before-queue proxy, milter): the
    #: strictest outcome applies to every recipient
    ONE_COPY = "one-copy"


class Pipeline:
    """Shared by every session of an agent; see the module documentation."""

    def __init__(
        self,
        scanner: Scanner,
        policy: Policy,
        *,
        store: QuarantineStore | None,
        host: str,
        secret_file: Path | None = None,
        release_max_age: float = 604800,
        clock: Callable[[], float] = time.time,
        notifier: Notifier | None = None,
    ) -> None:
        self.scanner = scanner
        self.notifier = notifier
        self.policy = policy
        self.store = store
        self.host = host
        self.secret_file = secret_file
        self.release_max_age = release_max_age
        self.clock = clock
        self._secret: bytes | None = None

    @classmethod
    def from_config(cls, config: Config, scanner: Scanner, *, host: str) -> Pipeline:
        metrics_record.arm(
            enabled=bool(config["metrics"]["enabled"]), directory=config["metrics"]["directory"]
        )
        return cls(
            scanner,
            Policy.from_config(config),
            store=open_store(config),
            host=host,
            secret_file=Path(config["release"]["secret_file"]),
            release_max_age=float(config["release"]["max_age"]),
            notifier=Notifier.from_config(config, host=host),
        )

    def reload(self, config: Config) -> None:
        """Take the policy of a newly loaded configuration (SIGHUP); sessions in
        progress finish with the policy they started with."""
        self.policy = Policy.from_config(config)
        self.release_max_age = float(config["release"]["max_age"])
        if self.notifier is not None:
            self.notifier.reconfigure(config)

    def reload_from(self, files: list[str]) -> None:
        """Load the configuration from the first of ``files`` again and take its policy;
        a configuration that does not load is logged and the old policy kept."""
        try:
            self.reload(load_config(files[0]) if files else defaults())
        except MailwardenError as exc:
            log.error("reload failed, keeping the current policy: %s", exc)
            return
        log.info("policy reloaded")

    async def process(self, message: Message, *, mode: Mode, answer: Answer) -> Done:
        """Scan, decide and act on ``message``; never raises for a scan or store failure."""
        started = time.perf_counter()
        released = self.is_released(message.raw)
        verdict = await self.scan(message)
        scanned = time.perf_counter()
        action = shape(decide(verdict, message, self.policy, mode=mode, released=released), answer)
        timings = {"scan": scanned - started, "decide": time.perf_counter() - scanned}
        metrics_record.scanned(
            message.envelope,
            status=verdict.status.value,
            action=action.whole.kind.value,
            seconds=timings["scan"],
        )
        try:
            if action.keep_copy:
                # writing and syncing a quarantine file may block: off the loop
                done = await asyncio.to_thread(
                    carry_out,
                    message,
                    verdict,
                    action,
                    store=self.store,
                    host=self.host,
                    timings=timings,
                )
            else:
                # the common case writes one history row: quicker in line than the
                # hand-over to a thread and back, which waits for the GIL twice
                done = carry_out(
                    message, verdict, action, store=self.store, host=self.host, timings=timings
                )
        except Exception as exc:  # the store, the disk: nothing may be lost
            log.error(
                "queue id %s: cannot carry out %s: %s",
                message.envelope.queue_id,
                action.kind.value,
                exc,
            )
            return Done(deferred(action, _STORE_FAILED), (), None, "")
        if self.notifier is not None:
            # queued for a background thread once the outcome is settled; never raises
            self.notifier.submit(message, verdict, done.action, quarantine_id=done.quarantine_id)
        return done

    async def scan(self, message: Message) -> Verdict:
        """The daemon's verdict, or an ``error`` verdict saying why there is none."""
        try:
            return await self.scanner.scan_bytes(message.raw, message.envelope)
        except Exception as exc:  # unreachable, timed out, crashed, refused the input
            log.warning("queue id %s: no verdict: %s", message.envelope.queue_id, exc)
            return Verdict(Status.ERROR, reason=_short(str(exc)), size=len(message.raw))

    def is_released(self, raw: bytes) -> bool:
        if not _MARK.search(raw, 0, min(len(raw), 256 * 1024)):
            return False
        secret = self._load_secret()
        if secret is None:
            return False
        mark = check_mark(raw, secret, now=self.clock(), max_age=self.release_max_age)
        if mark is not None:
            log.info("quarantine id %s: release mark verified", mark.qid)
        return mark is not None

    def _load_secret(self) -> bytes | None:
        if self._secret is None and self.secret_file is not None:
            try:
                self._secret = load_secret(self.secret_file)
            except ReleaseError as exc:
                log.warning("release marks cannot be checked: %s", exc)
        return self._secret


def shape(action: Action, answer: Answer) -> Action:
    """Fit the per-recipient outcomes to what the agent can answer; see :class:`Answer`."""
    if answer is Answer.PER_RECIPIENT or not action.outcomes:
        return action
    whole = action.whole
    if answer is Answer.PER_MESSAGE and whole.kind not in (ActionKind.DEFER, ActionKind.REJECT):
        return action
    if all(o == whole for _, o in action.outcomes):
        return action
    return dataclasses.replace(action, outcomes=tuple((r, whole) for r, _ in action.outcomes))


def deferred(action: Action, reply: SmtpReply) -> Action:
    """``action`` turned into a temporary failure for every recipient."""
    outcome = Outcome(ActionKind.DEFER, reply, rule="internal failure")
    return dataclasses.replace(
        action, whole=outcome, outcomes=tuple((r, outcome) for r, _ in action.outcomes)
    )


def _short(text: str) -> str:
    return text if len(text) <= 200 else text[:197] + "..."
