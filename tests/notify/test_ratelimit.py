"""The per-address token bucket, driven by an injected clock."""

from __future__ import annotations

from mailwarden.notify import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_one_per_interval() -> None:
    clock = Clock()
    limiter = RateLimiter(3, clock=clock)
    assert [limiter.allow("bob@example.org") for _ in range(4)] == [True, True, True, False]
    clock.now += 1199  # one token takes 3600 / 3 = 1200 s
    assert not limiter.allow("bob@example.org")
    clock.now += 1
    assert limiter.allow("bob@example.org")
    assert not limiter.allow("bob@example.org")


def test_buckets_are_per_address_and_case_insensitive() -> None:
    limiter = RateLimiter(1, clock=Clock())
    assert limiter.allow("Bob@Example.org")
    assert not limiter.allow("<bob@example.org>")
    assert limiter.allow("carol@example.org")


def test_refill_never_exceeds_the_hourly_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(2, clock=clock)
    assert limiter.allow("a@x")
    clock.now += 10 * 3600
    assert [limiter.allow("a@x") for _ in range(3)] == [True, True, False]


def test_zero_means_no_limit() -> None:
    limiter = RateLimiter(0, clock=Clock())
    assert all(limiter.allow("a@x") for _ in range(1000))


def test_memory_is_bounded() -> None:
    limiter = RateLimiter(1, clock=Clock(), max_addresses=100)
    for i in range(1000):
        limiter.allow(f"user{i}@example.org")
    assert len(limiter._buckets) == 100
