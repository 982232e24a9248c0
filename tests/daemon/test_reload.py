"""Reload end to end, with the real engine: no request fails while databases
change under a scanning client, new signatures take effect, a broken database
leaves the old one serving with the reason in the log and in STATS.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from daemon.e2e import engine_for, ndb_line, signature_folder
from daemon.harness import EICAR, RunningDaemon, wait_for


def marker(n: int) -> bytes:
    return f"MAILWARDEN-RELOAD-MARKER-{n}".encode()


def message(body: bytes) -> bytes:
    return b"Subject: reload test\r\n\r\n" + body + b"\r\n"


@pytest.fixture
def sigs(tmp_path: Path) -> Path:
    return signature_folder(tmp_path)


@pytest.fixture
def real(start_daemon, sigs: Path) -> RunningDaemon:
    return start_daemon(real=True, engine=engine_for(sigs))


def test_three_reloads_under_load_lose_nothing(real: RunningDaemon, sigs: Path) -> None:
    problems: list[str] = []
    scans = [0]
    stop = threading.Event()

    def scan_loop() -> None:
        with real.client() as client:
            while not stop.is_set():
                reply = client.instream(message(EICAR))
                scans[0] += 1
                if reply != "stream: Eicar-Test-Signature.UNOFFICIAL FOUND":
                    problems.append(reply)

    loops = [threading.Thread(target=scan_loop) for _ in range(3)]
    for t in loops:
        t.start()
    try:
        with real.client() as control:
            for n in (1, 2, 3):
                assert control.instream(message(marker(n))) == "stream: OK"
                (sigs / f"new{n}.ndb").write_text(ndb_line(f"Reload.Marker.{n}", marker(n)))
                control.reload()
                wait_for(lambda n=n: real.server.pool.reloads == n, timeout=120, what=f"reload {n}")
                reply = control.instream(message(marker(n)))
                assert reply == f"stream: Reload.Marker.{n}.UNOFFICIAL FOUND"
    finally:
        stop.set()
        for t in loops:
            t.join()
    assert problems == []
    assert scans[0] > 0
    assert real.stats()["RELOADS"].startswith("3 last ok")


def test_a_broken_database_leaves_the_old_one_serving(
    real: RunningDaemon, sigs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (sigs / "broken.ndb").write_text("Broken.Sig:0:*:zz-not-hex\n")
    caplog.set_level(logging.ERROR, logger="mailwarden.daemon")
    with real.client() as client:
        client.reload()
        wait_for(lambda: real.server.pool.last_reload.startswith("failed"), what="the failure")
        assert client.instream(message(EICAR)) == "stream: Eicar-Test-Signature.UNOFFICIAL FOUND"
        stats = client.stats()
    line = next(x for x in stats.splitlines() if x.startswith("RELOADS:"))
    assert "failed" in line and "broken.ndb" in line
    assert any("broken.ndb" in r.getMessage() for r in caplog.records)
    assert real.server.pool.current.number == 1
