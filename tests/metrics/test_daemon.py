"""Reading the daemon's STATS: the reply the daemon renders, and odd replies."""

from __future__ import annotations

import time

from mailwarden.daemon.stats import Counters, Snapshot, render
from mailwarden.metrics.daemon import daemon_status, parse_stats
from mailwarden.verdict import Status, Verdict


def _snapshot() -> Snapshot:
    counters = Counters()
    for status in (Status.CLEAN, Status.CLEAN, Status.INFECTED, Status.UNSCANNED):
        counters.add(Verdict(status, size=10))
    counters.add_error()
    return Snapshot(
        live=3,
        idle=1,
        max_workers=4,
        idle_timeout=30,
        queued=2,
        queue_limit=100,
        active=[("MAILSCAN /x", 0.5)],
        pids=[],
        db_version="daily:27400,main:62",
        signatures=123456,
        generation=3,
        loaded_at=time.time(),
        counters=counters,
        rejected=7,
        timeouts=1,
        worker_deaths=2,
        connections=5,
        reloads=2,
        last_reload="SIGHUP",
        daemon_version="0.1.0",
    )


def test_the_daemons_own_reply_is_read_back() -> None:
    status = parse_stats(render(_snapshot()), version="ClamAV 1.4.2/daily")
    assert status.up and status.version == "ClamAV 1.4.2/daily"
    assert status.db_version == "daily:27400,main:62"
    assert (status.signatures, status.generation) == (123456, 3)
    assert (status.threads_live, status.threads_idle, status.threads_max) == (3, 1, 4)
    assert (status.queue_depth, status.queue_limit, status.queue_rejected) == (2, 100, 7)
    assert (status.worker_deaths, status.worker_timeouts) == (2, 1)
    assert (status.connections, status.reloads, status.last_reload) == (5, 2, "SIGHUP")
    assert status.scans == {
        "total": 5,
        "infected": 1,
        "suspicious": 0,
        "unscanned": 1,
        "errors": 1,
        "findings": 0,
        "bytes": 40,
    }
    assert status.daemon_version == "0.1.0"


def test_a_clamd_style_reply_without_our_lines_gives_what_it_has() -> None:
    status = parse_stats(
        "POOLS: 1\n\nSTATE: VALID PRIMARY\nTHREADS: live 1  idle 0 max 10 "
        "idle-timeout 30\nQUEUE: 0 items\n\tSTATS 0.000000 \nEND"
    )
    assert status.up and status.threads_max == 10 and status.signatures == 0
    assert parse_stats("garbage\x00: : :").up


def test_no_daemon_is_down_with_the_reason(tmp_path: object) -> None:
    status = daemon_status(f"{tmp_path}/none.sock", timeout=0.5)
    assert not status.up and status.error
