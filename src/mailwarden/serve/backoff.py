"""When to restart a child that exited, and when to stop trying: pure bookkeeping.

Usage (one :class:`Backoff` per child, owned by the supervisor)::

    backoff = Backoff(BackoffPolicy(first=1.0, cap=60.0, stable_after=60.0, give_up_after=5))
    decision = backoff.exited(ran_for=0.4, was_ready=False)
    if decision.give_up: ...                      # leave the child stopped, say why
    else: await asyncio.sleep(decision.delay)     # then start it again

The delay doubles with each exit in a row up to the cap, and falls back to
the first delay once a child has run for ``stable_after`` seconds, so a
child that crashes once a day restarts at once while one that crashes in a
loop does not spin.  A child that exits before it was ever ready (a bad
configuration, a port in use, a broken signature file) ``give_up_after``
times in a row is given up on: restarting it cannot help until someone
fixes the cause.  Like Postfix's master, which throttles a service whose
processes die before they serve, we keep the failure from costing the
rest of the system.

SECURITY: no I/O; durations come from the caller's monotonic clock.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    #: seconds before the first restart
    first: float
    #: longest delay
    cap: float
    #: a run at least this long resets the delay
    stable_after: float
    #: exits in a row before readiness after which the child is given up on
    give_up_after: int


@dataclass(frozen=True, slots=True)
class Decision:
    delay: float
    give_up: bool
    #: exits in a row (1 for the first) and, of those, exits before readiness
    exits_in_a_row: int
    start_failures: int


class Backoff:
    def __init__(self, policy: BackoffPolicy) -> None:
        self.policy = policy
        self.exits_in_a_row = 0
        self.start_failures = 0

    def exited(self, *, ran_for: float, was_ready: bool) -> Decision:
        """Record one exit of the child and say what to do next."""
        if ran_for >= self.policy.stable_after:
            self.exits_in_a_row = 0
        if was_ready:
            self.start_failures = 0
        else:
            self.start_failures += 1
        self.exits_in_a_row += 1
        # the exponent is bounded so a child that fails for days cannot overflow it
        doublings = min(self.exits_in_a_row - 1, 64)
        delay = min(self.policy.first * 2.0**doublings, self.policy.cap)
        return Decision(
            delay=delay,
            give_up=self.start_failures >= self.policy.give_up_after,
            exits_in_a_row=self.exits_in_a_row,
            start_failures=self.start_failures,
        )

    def reset(self) -> None:
        """Forget the history (an operator asked to try a given-up child again)."""
        self.exits_in_a_row = 0
        self.start_failures = 0
