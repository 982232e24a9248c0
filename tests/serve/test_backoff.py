"""``serve.backoff``: restart delays and giving up, as pure bookkeeping."""

from __future__ import annotations

from mailwarden.serve import Backoff, BackoffPolicy

POLICY = BackoffPolicy(first=1.0, cap=8.0, stable_after=60.0, give_up_after=3)


def test_the_delay_doubles_up_to_the_cap() -> None:
    backoff = Backoff(POLICY)
    delays = [backoff.exited(ran_for=5, was_ready=True).delay for _ in range(6)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_a_stable_run_resets_the_delay() -> None:
    backoff = Backoff(POLICY)
    for _ in range(4):
        backoff.exited(ran_for=5, was_ready=True)
    decision = backoff.exited(ran_for=60, was_ready=True)
    assert decision.delay == 1.0
    assert decision.exits_in_a_row == 1


def test_gives_up_after_failing_before_ready_too_often_in_a_row() -> None:
    backoff = Backoff(POLICY)
    decisions = [backoff.exited(ran_for=0.1, was_ready=False) for _ in range(3)]
    assert [d.give_up for d in decisions] == [False, False, True]
    assert decisions[-1].start_failures == 3


def test_a_ready_run_clears_the_start_failures() -> None:
    backoff = Backoff(POLICY)
    backoff.exited(ran_for=0.1, was_ready=False)
    backoff.exited(ran_for=0.1, was_ready=False)
    assert not backoff.exited(ran_for=1, was_ready=True).give_up
    assert not backoff.exited(ran_for=0.1, was_ready=False).give_up
    assert not backoff.exited(ran_for=0.1, was_ready=False).give_up


def test_crashes_after_ready_never_give_up_and_never_overflow() -> None:
    backoff = Backoff(POLICY)
    for _ in range(5000):
        decision = backoff.exited(ran_for=1, was_ready=True)
    assert not decision.give_up
    assert decision.delay == 8.0


def test_reset_forgets_everything() -> None:
    backoff = Backoff(POLICY)
    for _ in range(3):
        backoff.exited(ran_for=0.1, was_ready=False)
    backoff.reset()
    decision = backoff.exited(ran_for=0.1, was_ready=False)
    assert (decision.delay, decision.give_up, decision.start_failures) == (1.0, False, 1)
