"""Failed logins per address: blocked after N in the window, freed after it, bounded memory."""

from __future__ import annotations

from mailwarden.web.ratelimit import LoginLimiter


def test_blocked_after_the_attempts_and_free_after_the_window() -> None:
    now = [0.0]
    limiter = LoginLimiter(attempts=3, window=60, clock=lambda: now[0])
    for _ in range(3):
        assert not limiter.blocked("192.0.2.1")
        limiter.failed("192.0.2.1")
    assert limiter.blocked("192.0.2.1")
    assert not limiter.blocked("192.0.2.2")
    assert limiter.retry_after("192.0.2.1") == 61
    now[0] = 61
    assert not limiter.blocked("192.0.2.1")


def test_a_success_clears_the_address() -> None:
    limiter = LoginLimiter(attempts=2, window=60)
    limiter.failed("a")
    limiter.succeeded("a")
    limiter.failed("a")
    assert not limiter.blocked("a")


def test_memory_is_bounded() -> None:
    limiter = LoginLimiter(attempts=2, window=60, max_addresses=10)
    for i in range(1000):
        limiter.failed(f"10.0.{i // 256}.{i % 256}")
        limiter.failed("attacker")
    assert len(limiter._failures) <= 10
    assert limiter.blocked("attacker")
