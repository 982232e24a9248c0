"""Failed-login counting per client address, for the web interface.

Usage::

    limiter = LoginLimiter(attempts=5, window=300)
    if limiter.blocked(address): ...429...
    limiter.failed(address); limiter.succeeded(address)

After ``attempts`` failures within ``window`` seconds an address is refused
until its oldest failure leaves the window; a success clears it.

SECURITY: memory is bounded: at most ``max_addresses`` addresses are
tracked, the least recently seen forgotten first, and each keeps at most
``attempts`` times.  Behind a reverse proxy every client shares the proxy's
address: the limit then protects the password, not the users' access.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable


class LoginLimiter:
    def __init__(
        self,
        *,
        attempts: int,
        window: float,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.attempts = attempts
        self.window = window
        self.max_addresses = max_addresses
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str) -> deque[float]:
        times = self._failures.get(address)
        if times is None:
            return deque()
        cutoff = self.clock() - self.window
        while times and times[0] <= cutoff:
            times.popleft()
        if not times:
            del self._failures[address]
        return times

    def blocked(self, address: str) -> bool:
        return len(self._recent(address)) >= self.attempts

    def retry_after(self, address: str) -> int:
        times = self._recent(address)
        return max(1, int(times[0] + self.window - self.clock()) + 1) if times else 0

    def failed(self, address: str) -> None:
        times = self._recent(address)
        times.append(self.clock())
        while len(times) > self.attempts:
            times.popleft()
        self._failures[address] = times
        self._failures.move_to_end(address)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)
