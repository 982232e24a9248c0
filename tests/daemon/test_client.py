"""client.py: the sync and async clients against a running daemon."""

from __future__ import annotations

import asyncio
import socket
import tempfile
import threading
from pathlib import Path

import pytest

from daemon.harness import RunningDaemon, wait_for
from mailwarden.daemon import (
    AsyncDaemonClient,
    DaemonClient,
    DaemonReplyError,
    DaemonUnavailable,
)
from mailwarden.errors import MailwardenError
from mailwarden.message import Direction, Envelope, Point
from mailwarden.verdict import Status

ENVELOPE = Envelope(
    sender="a@example.org",
    recipients=("b@example.net",),
    direction=Direction.INBOUND,
    point=Point.MTA,
    queue_id="4XyZ",
)


def test_sync_client_calls(daemon: RunningDaemon) -> None:
    with daemon.client() as client:
        assert client.ping() is True
        assert client.version().startswith("ClamAV ")
        assert client.instream(b"EICAR") == "stream: Fake.Eicar FOUND"
        assert client.instream(b"fine") == "stream: OK"
        verdict = client.scan_bytes(b"EICAR", ENVELOPE)
        assert verdict.status is Status.INFECTED
        assert verdict.findings[0].part == "1/eicar.com"
        assert client.scan_bytes(b"UNSCANNED").reason == "encrypted archive in 1/a.zip"
        assert "END" in client.stats().splitlines()
        client.reload()


def test_sync_client_reuses_one_connection(daemon: RunningDaemon) -> None:
    with daemon.client() as client:
        for _ in range(5):
            assert client.instream(b"EICAR") == "stream: Fake.Eicar FOUND"
        # the session that served them is the one STATS is asked on
        assert daemon.stats()["CONNECTIONS"] == "2"


def test_sync_client_survives_the_daemon_closing_an_idle_session(start_daemon) -> None:
    d = start_daemon(idle_timeout=0.3)
    with d.client() as client:
        assert client.ping()
        threading.Event().wait(0.8)  # the daemon times the session out meanwhile
        assert client.scan_bytes(b"EICAR").status is Status.INFECTED


def test_sync_client_is_safe_across_threads(daemon: RunningDaemon) -> None:
    results: list[str] = []
    with daemon.client() as client:

        def work() -> None:
            for _ in range(5):
                results.append(client.instream(b"EICAR"))

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results == ["stream: Fake.Eicar FOUND"] * 20


def test_unreachable_daemon_raises_daemon_unavailable() -> None:
    missing = Path(tempfile.mkdtemp(prefix="mwd-")) / "none.sock"
    with pytest.raises(DaemonUnavailable) as info:
        DaemonClient(str(missing)).scan_bytes(b"x")
    assert isinstance(info.value, MailwardenError)


def test_a_daemon_that_does_not_answer_in_time_raises_daemon_unavailable() -> None:
    path = Path(tempfile.mkdtemp(prefix="mwd-")) / "mute.sock"
    with socket.socket(socket.AF_UNIX) as mute:
        mute.bind(str(path))
        mute.listen()
        with pytest.raises(DaemonUnavailable, match="did not answer"):
            DaemonClient(str(path), timeout=0.3).ping()


def test_error_replies_raise_daemon_reply_error(start_daemon) -> None:
    d = start_daemon(workers=1, queue=0)
    with d.client(reuse=False) as busy_client, d.client() as client:
        t = threading.Thread(target=busy_client.instream, args=(b"SLEEP:1",))
        t.start()
        try:
            wait_for(lambda: d.server.pool._tickets == 1, what="the slow scan")
            with pytest.raises(DaemonReplyError, match="Queue full"):
                client.scan_bytes(b"EICAR")
        finally:
            t.join()


def test_size_limit_reply_reaches_the_client(start_daemon) -> None:
    d = start_daemon(stream_max_length=10_000)
    with d.client() as client:
        assert client.instream(b"x" * 500_000) == "INSTREAM size limit exceeded. ERROR"
        verdict = client.scan_bytes(b"x" * 500_000)
        assert verdict.status is Status.UNSCANNED


def test_async_client_calls_and_concurrency(daemon: RunningDaemon) -> None:
    async def main() -> list[object]:
        async with AsyncDaemonClient(daemon.socket) as client:
            assert await client.ping()
            assert (await client.version()).startswith("ClamAV ")
            assert await client.instream(b"EICAR") == "stream: Fake.Eicar FOUND"
            assert "END" in (await client.stats()).splitlines()
            verdicts = await asyncio.gather(
                *(client.scan_bytes(b"EICAR" if i % 2 else b"fine", ENVELOPE) for i in range(10))
            )
            await client.reload()
            return [v.status for v in verdicts]

    statuses = asyncio.run(main())
    assert statuses == [Status.CLEAN, Status.INFECTED] * 5


def test_async_client_raises_daemon_unavailable() -> None:
    missing = Path(tempfile.mkdtemp(prefix="mwd-")) / "none.sock"

    async def main() -> None:
        await AsyncDaemonClient(str(missing)).ping()

    with pytest.raises(DaemonUnavailable):
        asyncio.run(main())


def test_async_client_times_out() -> None:
    path = Path(tempfile.mkdtemp(prefix="mwd-")) / "mute.sock"
    with socket.socket(socket.AF_UNIX) as mute:
        mute.bind(str(path))
        mute.listen()

        async def main() -> None:
            await AsyncDaemonClient(str(path), timeout=0.3).scan_bytes(b"x")

        with pytest.raises(DaemonUnavailable, match="did not answer"):
            asyncio.run(main())
