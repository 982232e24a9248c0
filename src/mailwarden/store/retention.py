"""Retention: remove quarantined messages and history older than their periods.

Two callers::

    purged = purge_expired(store, config["store"], now=time.time())   # quarantine purge
    await keep_purging(lambda: open_store(config), config["store"])    # serve, hourly

``[store] retention_days`` bounds the quarantine, ``event_retention_days``
the history.  ``keep_purging`` runs for as long as ``mailwarden serve`` does:
a purge at start, then one every ``purge_interval`` seconds; each round
opens the store and closes it again, so a database that is down for one
round (PostgreSQL restarting) is logged and tried again at the next.  The
clock and the sleep are parameters, so tests drive rounds without waiting.
Several nodes sharing one PostgreSQL may all purge: deleting what is already
gone deletes nothing.

SECURITY: deletes only by age, through the store interface; needs the same
access to the store as the agents.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mailwarden.store.base import QuarantineStore, StoreError

log = logging.getLogger("mailwarden.store.retention")

_DAY = 86400


@dataclass(frozen=True, slots=True)
class Purged:
    messages: int
    events: int


def purge_expired(store: QuarantineStore, section: Mapping[str, Any], *, now: float) -> Purged:
    """Delete what is older than the ``[store]`` retention periods at ``now``."""
    messages = store.purge(now - section["retention_days"] * _DAY)
    events = store.purge_events(now - section["event_retention_days"] * _DAY)
    return Purged(messages, events)


async def keep_purging(
    open_store: Callable[[], QuarantineStore],
    section: Mapping[str, Any],
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> None:
    """Purge now and then every ``section["purge_interval"]`` seconds, until cancelled.

    Returns at once when the interval is 0 (purging is left to a timer running
    ``mailwarden quarantine purge``).
    """
    interval = float(section["purge_interval"])
    if interval <= 0:
        return
    while True:
        await asyncio.to_thread(_one_round, open_store, section, clock())
        await sleep(interval)


def _one_round(
    open_store: Callable[[], QuarantineStore], section: Mapping[str, Any], now: float
) -> None:
    try:
        store = open_store()
        try:
            purged = purge_expired(store, section, now=now)
        finally:
            store.close()
    except StoreError as exc:
        log.warning("retention: purge skipped this round: %s", exc)
        return
    if purged.messages or purged.events:
        log.info(
            "retention: purged %d quarantined messages and %d history events",
            purged.messages,
            purged.events,
        )
