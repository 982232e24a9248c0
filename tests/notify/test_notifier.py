"""The notifier: queued off the caller's path, sent by SMTP, failures only logged."""

from __future__ import annotations

import email
import email.policy
import logging
import threading
from pathlib import Path

import pytest

from mailwarden.notify import Notifier
from mailwarden.notify.settings import NotifySettings
from notify.helpers import EICAR, RAW, config, decided, message, settings
from support.smtp_sink import smtp_sink

QUARANTINE = '[policy]\ninfected = "quarantine"\n'


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_admin_and_recipient_notices_reach_the_smtp_server(tmp_path: Path) -> None:
    with smtp_sink() as (sink, port):
        cfg = config(tmp_path, QUARANTINE + f'[notify]\nsmtp = "127.0.0.1:{port}"\n')
        notifier = Notifier.from_config(cfg, host="gw.example.org")
        assert notifier is not None
        msg = message()
        queued = notifier.submit(msg, EICAR, decided(cfg, msg, EICAR), quarantine_id="ab" * 16)
        assert queued == 2
        assert notifier.flush(30)
        assert notifier.counts["sent"] == 2
        by_rcpt = {tuple(m.recipients): m for m in sink.messages}
        assert set(by_rcpt) == {("postmaster",), ("bob@example.org",)}
        for received in sink.messages:
            assert received.sender == "<>"  # the null envelope sender, as aiosmtpd records it
            parsed = email.message_from_bytes(received.data, policy=email.policy.default)
            assert parsed["Auto-Submitted"] == "auto-generated"
            assert "Eicar-Test-Signature" in parsed["Subject"]
        admin = email.message_from_bytes(by_rcpt[("postmaster",)].data, policy=email.policy.default)
        text = admin.get_body(("plain",))
        assert text is not None
        assert "mailwarden quarantine release " + "ab" * 16 in text.get_content()
        # the administrator gets the original header block, base64, as RFC 6522 says
        parts = [
            p for p in admin.iter_attachments() if p.get_content_type() == "text/rfc822-headers"
        ]
        assert len(parts) == 1
        assert parts[0]["Content-Transfer-Encoding"] == "base64"
        assert parts[0].get_payload(decode=True) == RAW.split(b"\r\n\r\n")[0] + b"\r\n"
        bob = email.message_from_bytes(by_rcpt[("bob@example.org",)].data)
        assert bob.get_content_type() == "text/plain"


def test_envelope_sender_is_configurable(tmp_path: Path) -> None:
    with smtp_sink() as (sink, port):
        extra = f'[notify]\nsmtp = "127.0.0.1:{port}"\nenvelope_sender = "bounces@example.org"\n'
        cfg = config(tmp_path, QUARANTINE + extra)
        notifier = Notifier.from_config(cfg, host="gw.example.org")
        assert notifier is not None
        msg = message()
        notifier.submit(msg, EICAR, decided(cfg, msg, EICAR), quarantine_id=None)
        assert notifier.flush(30)
        assert {m.sender for m in sink.messages} == {"bounces@example.org"}


def test_an_unreachable_server_is_logged_and_nothing_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config(tmp_path, QUARANTINE + f'[notify]\nsmtp = "127.0.0.1:{_free_port()}"\n')
    notifier = Notifier.from_config(cfg, host="gw.example.org")
    assert notifier is not None
    msg = message()
    with caplog.at_level(logging.ERROR, logger="mailwarden.notify"):
        assert notifier.submit(msg, EICAR, decided(cfg, msg, EICAR), quarantine_id=None) == 2
        assert notifier.flush(30)
    assert notifier.counts == {"sent": 0, "failed": 2, "limited": 0, "dropped": 0}
    assert "not sent" in caplog.text


def test_a_refused_recipient_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with smtp_sink() as (sink, port):
        sink.refuse.add("postmaster")
        cfg = config(tmp_path, QUARANTINE + f'[notify]\nsmtp = "127.0.0.1:{port}"\n')
        notifier = Notifier.from_config(cfg, host="gw.example.org")
        assert notifier is not None
        msg = message()
        with caplog.at_level(logging.ERROR, logger="mailwarden.notify"):
            notifier.submit(msg, EICAR, decided(cfg, msg, EICAR), quarantine_id=None)
            assert notifier.flush(30)
        assert notifier.counts["failed"] == 1 and notifier.counts["sent"] == 1
        assert "refused postmaster: 550" in caplog.text


def test_the_sendmail_program_failing_is_logged(tmp_path: Path) -> None:
    cfg = config(tmp_path, QUARANTINE + '[notify]\ntransport = "sendmail"\nsendmail = "false"\n')
    notifier = Notifier.from_config(cfg, host="gw.example.org")
    assert notifier is not None
    msg = message()
    notifier.submit(msg, EICAR, decided(cfg, msg, EICAR), quarantine_id=None)
    assert notifier.flush(30)
    assert notifier.counts["failed"] == 2


def test_submit_returns_before_the_send_finishes(tmp_path: Path) -> None:
    cfg = config(tmp_path, QUARANTINE)
    release = threading.Event()
    sent: list[str] = []

    def slow_send(data: bytes, sender: str, rcpt: str, st: NotifySettings) -> None:
        release.wait(30)
        sent.append(rcpt)

    notifier = Notifier(settings(cfg), send=slow_send)
    msg = message()
    assert notifier.submit(msg, EICAR, decided(cfg, msg, EICAR), quarantine_id=None) == 2
    assert sent == []  # still waiting in the background
    assert not notifier.flush(0.05)
    release.set()
    assert notifier.flush(30)
    assert sorted(sent) == ["bob@example.org", "postmaster"]


def test_rate_limit_drops_the_excess_per_address(tmp_path: Path) -> None:
    cfg = config(tmp_path, QUARANTINE + "[notify]\nrate_limit = 2\n")
    now = [0.0]
    sent: list[str] = []
    notifier = Notifier(
        settings(cfg), send=lambda d, s, r, st: sent.append(r), clock=lambda: now[0]
    )
    for _ in range(3):
        msg = message()
        notifier.submit(msg, EICAR, decided(cfg, msg, EICAR), quarantine_id=None)
    assert notifier.flush(30)
    assert sorted(sent) == ["bob@example.org"] * 2 + ["postmaster"] * 2
    assert notifier.counts["limited"] == 2
    now[0] += 1800  # half an hour: one token back for each address
    msg = message()
    notifier.submit(msg, EICAR, decided(cfg, msg, EICAR), quarantine_id=None)
    assert notifier.flush(30)
    assert len(sent) == 6


def test_the_queue_is_bounded(tmp_path: Path) -> None:
    cfg = config(tmp_path, QUARANTINE + "[notify]\nmax_pending = 1\nrate_limit = 0\n")
    release = threading.Event()
    notifier = Notifier(settings(cfg), send=lambda d, s, r, st: release.wait(30))
    msg = message()
    assert notifier.submit(msg, EICAR, decided(cfg, msg, EICAR), quarantine_id=None) == 1
    assert notifier.counts["dropped"] == 1
    release.set()
    assert notifier.flush(30)


def test_disabled_notifications_build_no_notifier(tmp_path: Path) -> None:
    assert Notifier.from_config(config(tmp_path, "[notify]\nenabled = false\n"), host="h") is None


class _Scanner:
    def __init__(self, result: object) -> None:
        self.result = result

    async def scan_bytes(self, data: object, envelope: object = None) -> object:
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


def _pipeline_run(tmp_path: Path, scanner: _Scanner, store: object) -> list[str]:
    import asyncio

    from mailwarden.intercept.pipeline import Answer, Pipeline
    from mailwarden.policy import Mode, Policy

    cfg = config(tmp_path, QUARANTINE)
    sent: list[str] = []
    notifier = Notifier(settings(cfg), send=lambda d, s, r, st: sent.append(r))
    pipeline = Pipeline(
        scanner,  # type: ignore[arg-type]
        Policy.from_config(cfg),
        store=store,  # type: ignore[arg-type]
        host="gw.example.org",
        notifier=notifier,
    )
    asyncio.run(pipeline.process(message(), mode=Mode.AFTER_QUEUE, answer=Answer.PER_MESSAGE))
    assert notifier.flush(30)
    return sorted(sent)


def test_the_pipeline_notifies_once_the_copy_is_kept(tmp_path: Path) -> None:
    from mailwarden.store import SqliteStore

    store = SqliteStore(tmp_path / "db.sqlite3", tmp_path / "q")
    assert _pipeline_run(tmp_path, _Scanner(EICAR), store) == ["bob@example.org", "postmaster"]
    assert len(store.entries()) == 1


def test_no_notice_when_the_mail_is_deferred(tmp_path: Path) -> None:
    from mailwarden.daemon import DaemonUnavailable
    from mailwarden.store import SqliteStore

    store = SqliteStore(tmp_path / "db.sqlite3", tmp_path / "q")
    assert _pipeline_run(tmp_path, _Scanner(DaemonUnavailable("down")), store) == []


def test_no_notice_when_the_quarantine_cannot_be_written(tmp_path: Path) -> None:
    class BrokenStore:
        def put(self, *args: object) -> str:
            raise OSError("disk full")

        def record_event(self, *args: object) -> None:
            raise OSError("disk full")

    # the mail is deferred (kept by the MTA), so nobody is told it was quarantined
    assert _pipeline_run(tmp_path, _Scanner(EICAR), BrokenStore()) == []
