"""pool.py: the bounded queue, scan timeouts, dead workers and generation swaps."""

from __future__ import annotations

import json
import threading

from daemon.harness import FAKE_BROKEN, RunningDaemon, read_all, wait_for
from mailwarden.daemon import protocol as p


def instream(data: bytes) -> bytes:
    return b"zINSTREAM\0" + b"".join(bytes(c) for c in p.chunks(data))


def test_overflow_of_the_queue_is_refused_at_once(start_daemon) -> None:
    d = start_daemon(workers=1, queue=1)
    busy = [d.connect(timeout=30) for _ in range(2)]  # one scanning, one waiting
    for sock in busy:
        sock.sendall(instream(b"SLEEP:1.5"))
    wait_for(lambda: d.server.pool._tickets == 2, what="both requests admitted")
    # the third gets its answer without waiting for the scans ahead of it
    assert d.exchange(instream(b"EICAR"), timeout=1.0) == (
        b"stream: Queue full, try again later. ERROR\0"
    )
    for sock in busy:
        assert read_all(sock) == b"stream: OK\0"
        sock.close()
    assert d.exchange(instream(b"EICAR")) == b"stream: Fake.Eicar FOUND\0"
    assert d.stats()["QUEUE-LIMIT"].split()[-1] == "1"  # one rejection counted


def test_a_scan_over_its_time_gets_an_error_and_its_worker_is_replaced(start_daemon) -> None:
    d = start_daemon(workers=1, scan_timeout=0.5)
    before = d.worker_pids()
    assert d.exchange(instream(b"SLEEP:30")) == b"stream: Time limit reached ERROR\0"
    wait_for(lambda: len(d.worker_pids()) == 1, what="a replacement worker")
    assert d.worker_pids() != before
    assert d.exchange(instream(b"EICAR")) == b"stream: Fake.Eicar FOUND\0"
    assert d.stats()["WORKERS"] == "timeouts 1 deaths 0"


def test_a_worker_that_dies_fails_only_its_request(daemon: RunningDaemon) -> None:
    assert daemon.exchange(instream(b"CRASH")) == b"stream: Scanner process died. ERROR\0"
    wait_for(lambda: len(daemon.worker_pids()) == 2, what="a replacement worker")
    for _ in range(4):
        assert daemon.exchange(instream(b"EICAR")) == b"stream: Fake.Eicar FOUND\0"
    assert daemon.stats()["WORKERS"] == "timeouts 0 deaths 1"


def test_reload_swaps_generations_without_refusing_requests(daemon: RunningDaemon) -> None:
    errors: list[bytes] = []
    stop = threading.Event()

    def scan_loop() -> None:
        while not stop.is_set():
            reply = daemon.exchange(instream(b"EICAR"))
            if reply != b"stream: Fake.Eicar FOUND\0":
                errors.append(reply)

    thread = threading.Thread(target=scan_loop)
    thread.start()
    try:
        old = daemon.worker_pids()
        for expected in (2, 3, 4):
            assert daemon.call(daemon.server.pool.reload()) is True
            assert daemon.server.pool.current.number == expected
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert set(daemon.worker_pids()).isdisjoint(old)
    wait_for(lambda: not daemon.server.pool.retired, what="old generations to exit")


def test_a_failed_reload_keeps_the_old_database(daemon: RunningDaemon) -> None:
    import dataclasses

    daemon.server.settings = dataclasses.replace(
        daemon.server.settings, backend_factory=FAKE_BROKEN
    )
    assert daemon.call(daemon.server.pool.reload()) is False
    assert daemon.exchange(instream(b"EICAR")) == b"stream: Fake.Eicar FOUND\0"
    last = daemon.stats()["RELOADS"]
    assert last.startswith("0 last failed:")
    assert "signature file damaged on purpose" in last


def test_mailscan_in_a_full_queue_is_refused_too(start_daemon) -> None:
    d = start_daemon(workers=1, queue=0)
    with d.connect(timeout=30) as busy:
        busy.sendall(instream(b"SLEEP:1"))
        wait_for(lambda: d.server.pool._tickets == 1, what="the first request admitted")
        reply = d.exchange(p.command("MAILSCAN", json.dumps({})) + bytes(p.chunks(b"x")[-1]))
        assert reply == b"MAILSCAN: Queue full, try again later. ERROR\0"
        assert read_all(busy) == b"stream: OK\0"
