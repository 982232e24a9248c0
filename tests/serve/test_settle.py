"""The supervisor's readiness rule for a child that holds no socket (update-watch):
ready once it has kept running ``settle`` seconds, so one that dies at its start
is given up on, and one that dies later is simply restarted.

The supervisor runs in this process on real child processes (small Python
programs); a chore ends the run with SIGTERM once the awaited state is reached.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time

import pytest

from mailwarden.serve import ChildSpec, ServeSettings, Supervisor

SETTINGS = ServeSettings(
    config_file=None,
    agents=(),
    user="",
    group="",
    restart_delay=0.05,
    restart_delay_max=0.2,
    stable_after=60.0,
    start_failures=3,
    agent_start_timeout=30.0,
    agent_settle_time=1.0,
    daemon_start_timeout=30.0,
    stop_timeout=5.0,
)


def _python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


def _run_until(
    specs: list[ChildSpec], caplog: pytest.LogCaptureFixture, done: str, count: int
) -> int:
    """Run the supervisor until ``done`` was logged ``count`` times (or 60 s passed)."""

    async def stop_when_done() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and caplog.text.count(done) < count:
            await asyncio.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    supervisor = Supervisor(SETTINGS, specs, chores=[stop_when_done])
    with caplog.at_level(logging.INFO, logger="mailwarden.serve"):
        return asyncio.run(supervisor.run())


def _daemon() -> ChildSpec:
    return ChildSpec("daemon", _python("import time; time.sleep(600)"), settle=0.2)


def test_a_socketless_child_dying_before_it_settles_is_given_up_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    quick = ChildSpec("watch", _python("import time, sys; time.sleep(0.2); sys.exit(3)"), settle=5)
    assert _run_until([_daemon(), quick], caplog, "not restarting", 1) == 0
    assert "watch: failed 3 times in a row before it was ready; not restarting it" in caplog.text
    assert "watch: ready" not in caplog.text
    assert caplog.text.count("watch: exit status 3") == 3


def test_a_socketless_child_that_settled_is_restarted_without_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    steady = ChildSpec("watch", _python("import time; time.sleep(0.6)"), settle=0.2)
    # more exits than start_failures: each came after it was ready
    assert _run_until([_daemon(), steady], caplog, "watch: ready", 5) == 0
    assert caplog.text.count("watch: exit status 0") >= 4
    assert "not restarting" not in caplog.text
