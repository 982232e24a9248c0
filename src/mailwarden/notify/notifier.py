"""The notifier the pipeline calls after a message's outcome is settled.

Usage::

    notifier = Notifier.from_config(config, host="mx1.example.org")
    notifier.submit(message, verdict, action, quarantine_id=qid)   # returns at once
    notifier.flush(timeout=30)                                     # tests, shutdown

``submit`` plans who is told (``plan.py``), applies the rate limit, takes
the few values the templates need (``context.py``) and queues the work;
one background thread renders, composes and sends, so the agent's reply to
the MTA never waits for a notification.  A process that exits waits for the
queued notifications (the thread is joined at interpreter exit, each send
bounded by ``[notify] timeout``).

Failures (template, SMTP, sendmail) are logged and dropped: a notification
is never a reason to defer or lose the mail it is about.

SECURITY: holds no privileges; see the modules it uses.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mailwarden.config import Config
from mailwarden.message import Message
from mailwarden.notify.compose import compose
from mailwarden.notify.context import mail_context
from mailwarden.notify.loop import header_block
from mailwarden.notify.plan import Notice, plan
from mailwarden.notify.ratelimit import RateLimiter
from mailwarden.notify.send import send_message
from mailwarden.notify.settings import NotifySettings
from mailwarden.notify.templates import TemplateBook
from mailwarden.policy import Action
from mailwarden.verdict import Verdict

log = logging.getLogger("mailwarden.notify")

Sender = Callable[[bytes, str, str, NotifySettings], None]


def _send(data: bytes, sender: str, recipient: str, settings: NotifySettings) -> None:
    send_message(data, sender=sender, recipient=recipient, settings=settings)


class Notifier:
    def __init__(
        self,
        settings: NotifySettings,
        *,
        send: Sender = _send,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.book = TemplateBook(settings.template_dir)
        self.limiter = RateLimiter(settings.rate_limit, clock=clock)
        self._send = send
        self._pool: ThreadPoolExecutor | None = None
        self._pending = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        #: counters for logs and tests: sent, failed, limited, dropped
        self.counts: dict[str, int] = {"sent": 0, "failed": 0, "limited": 0, "dropped": 0}

    @classmethod
    def from_config(cls, config: Config, *, host: str) -> Notifier | None:
        """The notifier for ``config``, or None when ``[notify] enabled`` is false."""
        settings = NotifySettings.from_config(config, host=host)
        return cls(settings) if settings.enabled else None

    def reconfigure(self, config: Config) -> None:
        """Take new settings and templates (SIGHUP); the rate-limit buckets are kept."""
        settings = NotifySettings.from_config(config, host=self.settings.host)
        self.settings = settings
        self.book = TemplateBook(settings.template_dir)
        self.limiter.per_hour = settings.rate_limit

    def submit(
        self, message: Message, verdict: Verdict, action: Action, *, quarantine_id: str | None
    ) -> int:
        """Queue the notifications about one message; returns how many were queued.

        Never raises: a problem is logged and the mail goes on as decided.
        """
        try:
            notices = plan(message, action, self.settings)
            if not notices:
                return 0
            context = mail_context(
                message, verdict, action, quarantine_id=quarantine_id, host=self.settings.host
            )
            headers = header_block(message.raw)
        except Exception:
            log.exception("queue id %s: cannot plan notifications", message.envelope.queue_id)
            return 0
        queued = 0
        for notice in notices:
            if not self.limiter.allow(notice.to):
                self._count("limited")
                log.warning("notification to %s dropped: over the hourly limit", notice.to)
                continue
            original = headers if notice.role == "admin" else None
            if not self._enqueue(notice, context, original):
                self._count("dropped")
                log.warning("notification to %s dropped: too many waiting", notice.to)
                continue
            queued += 1
        return queued

    def deliver(
        self, notice: Notice, context: dict[str, Any], original_headers: bytes | None = None
    ) -> bool:
        """Render, compose and send one notice now; True when it was handed on."""
        settings = self.settings
        try:
            subject, body = self.book.render(
                notice.role, notice.category, notice.direction, context
            )
            msg = compose(
                subject, body, notice=notice, settings=settings, original_headers=original_headers
            )
            data = msg.as_bytes()
            self._send(data, settings.envelope_sender, notice.to, settings)
        except Exception as exc:
            self._count("failed")
            log.error("notification (%s) to %s not sent: %s", notice.role, notice.to, exc)
            return False
        self._count("sent")
        log.info("notification (%s, %s) sent to %s", notice.role, notice.category, notice.to)
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until nothing is queued; False if ``timeout`` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _enqueue(self, notice: Notice, context: dict[str, Any], original: bytes | None) -> bool:
        with self._lock:
            if self._pending >= self.settings.max_pending:
                return False
            self._pending += 1
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="notify")
            pool = self._pool
        pool.submit(self._run, notice, context, original)
        return True

    def _run(self, notice: Notice, context: dict[str, Any], original: bytes | None) -> None:
        try:
            self.deliver(notice, context, original)
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1
