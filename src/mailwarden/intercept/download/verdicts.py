"""From a retrieved message to what the client gets: the pipeline, the mapping, the cache.

::

    scanner = DownloadScanner(pipeline, agent="imap-proxy", host="mx1", on_failure="error",
                              max_size=50_000_000, cache_entries=10_000)
    served = await scanner.check(raw, user="alice", key=("INBOX", 1700000000, 42),
                                 client="192.0.2.7", ref="imap:alice:INBOX:42")
    served.kind         # CLEAN: serve the server's bytes unchanged
    served.data         # REPLACED: serve these bytes instead (sizes follow them)

Mapping from the policy (after delivery: the message is in the mailbox
already, so :data:`Mode.AFTER_QUEUE`):

=====================  ================================================
policy outcome          what the client retrieves
=====================  ================================================
accept                  the original, byte for byte
tag                     the copy with X-Virus-* headers and subject tag
quarantine, reject,     the warning message (``warning.py``); a kept
discard                 copy goes to the quarantine store as usual
defer (scan failed,     FAILED: the proxy answers ``-ERR``/``NO`` for that
daemon down)            message, or a warning when ``on_failure = warning``
=====================  ================================================

Results are cached per ``key`` (the user plus the POP3 UIDL, or the IMAP
mailbox, UIDVALIDITY and UID, which name one immutable message) so a
message fetched in slices or again later is scanned once.  Failures are not
cached: the next retrieval tries again.

SECURITY: a message is CLEAN only after the daemon said so and the policy
accepted it; every other path serves something else or nothing.  The
cache is in memory, per process, keyed by user, so one user's results never
answer for another user's mailbox.
"""

from __future__ import annotations

import enum
import logging
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from mailwarden.intercept.download.warning import warning_message
from mailwarden.intercept.pipeline import Answer, Pipeline
from mailwarden.message import Direction, Envelope, Message, Point
from mailwarden.policy import ActionKind, Mode

log = logging.getLogger("mailwarden.intercept.download")


class Kind(enum.Enum):
    CLEAN = "clean"
    REPLACED = "replaced"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Served:
    kind: Kind
    #: the bytes served instead of the original (REPLACED only)
    data: bytes | None = None
    #: why, for FAILED answers and logs (printable ASCII)
    reason: str = ""
    #: False for a warning served because scanning failed: never cached
    final: bool = True
    #: a warning stands for a message the policy kept from the reader
    #: (what ``infected_original`` acts on)
    warned: bool = False


CLEAN = Served(Kind.CLEAN)


class VerdictCache:
    """A bounded least-recently-used map from a message's key to what was served."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._items: OrderedDict[Hashable, Served] = OrderedDict()

    def get(self, key: Hashable) -> Served | None:
        served = self._items.get(key)
        if served is not None:
            self._items.move_to_end(key)
        return served

    def put(self, key: Hashable, served: Served) -> None:
        if self.entries <= 0:
            return
        self._items[key] = served
        self._items.move_to_end(key)
        while len(self._items) > self.entries:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class DownloadScanner:
    """Shared by every session of a proxy; see the module documentation."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        agent: str,
        host: str,
        on_failure: str,
        max_size: int,
        cache_entries: int,
    ) -> None:
        self.pipeline = pipeline
        self.agent = agent
        self.host = host
        self.on_failure = on_failure
        self.max_size = max_size
        self.cache = VerdictCache(cache_entries)

    def cached(self, key: Hashable) -> Served | None:
        return self.cache.get(key)

    async def check(
        self,
        raw: bytes,
        *,
        user: str | None,
        key: Hashable | None,
        client: str | None,
        ref: str,
    ) -> Served:
        if key is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        if len(raw) > self.max_size:
            served = self._failed(raw, f"message over the proxy's limit of {self.max_size} octets")
        else:
            served = await self._scan(raw, user, client, ref)
        if key is not None and served.kind is not Kind.FAILED and served.final:
            self.cache.put(key, served)
        return served

    async def _scan(self, raw: bytes, user: str | None, client: str | None, ref: str) -> Served:
        envelope = Envelope(
            recipients=(user,) if user else (),
            client_address=client,
            auth_user=user,
            queue_id=ref,
            direction=Direction.INBOUND,
            point=Point.DOWNLOAD,
            agent=self.agent,
        )
        done = await self.pipeline.process(
            Message(raw, envelope), mode=Mode.AFTER_QUEUE, answer=Answer.ONE_COPY
        )
        action = done.action
        kind = action.kind
        if kind is ActionKind.ACCEPT:
            return CLEAN
        if kind is ActionKind.TAG and done.deliveries:
            return Served(Kind.REPLACED, done.deliveries[0][0], action.status)
        if kind is ActionKind.DEFER:
            return self._failed(raw, action.reply.text)
        if done.quarantine_id:
            note = f"The original is held in the quarantine as {done.quarantine_id}."
        else:
            note = "The original was not kept."
        data = warning_message(
            raw, found=action.status, status=action.status, note=note, host=self.host,
            size=len(raw),
        )  # fmt: skip
        return Served(Kind.REPLACED, data, action.status, warned=True)

    def _failed(self, raw: bytes, reason: str) -> Served:
        if self.on_failure == "warning":
            status = f"Unscanned ({reason})"
            note = "The message could not be scanned; it stays on the server."
            data = warning_message(
                raw, found=status, status=status, note=note, host=self.host, size=len(raw)
            )
            return Served(Kind.REPLACED, data, reason, final=False)
        return Served(Kind.FAILED, None, reason)
