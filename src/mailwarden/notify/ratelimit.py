"""Rate limit: how many notifications one address may receive per hour.

A token bucket per address, held in the process (each agent process has its
own; ``mailwarden serve`` runs one process per agent)::

    limiter = RateLimiter(per_hour=20, clock=time.monotonic)
    if limiter.allow("bob@example.org"): send(...)

A bucket holds ``per_hour`` tokens and refills at ``per_hour`` per hour, so
a burst of ``per_hour`` notices goes out at once and then one every
``3600 / per_hour`` seconds.  Why in memory: the store is for mail and its
history, and a limit that forgets on restart errs towards one more notice,
never towards losing a message.

SECURITY: addresses come from hostile mail; memory is bounded by
``max_addresses`` (the least recently used bucket is forgotten first, which
at worst lets that address have a fresh bucket).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        per_hour: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = 10_000,
    ) -> None:
        self.per_hour = per_hour
        self.clock = clock
        self.max_addresses = max_addresses
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, address: str) -> bool:
        """Take one token for ``address``; False when its bucket is empty (0: no limit)."""
        if self.per_hour <= 0:
            return True
        key = address.strip().strip("<>").lower()
        now = self.clock()
        rate = self.per_hour / 3600.0
        with self._lock:
            tokens, last = self._buckets.pop(key, (float(self.per_hour), now))
            tokens = min(float(self.per_hour), tokens + (now - last) * rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_addresses:
                self._buckets.popitem(last=False)
        return allowed
