"""End to end through a real Sendmail from Debian: ``INPUT_MAIL_FILTER(..., F=T, ...)``.

Sendmail is unpacked from Debian's packages into a root of its own
(``support/sendmail.py``: it conflicts with Postfix as a package), relays
every message to a sink, and hands each one to ``mailwarden milter`` on a
loopback TCP socket.  ``F=T``: with the milter gone, the client gets a 4xx.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from intercept.harness import EICAR, Stack, free_port, wait_until
from intercept.mail import eicar_zip, make_message
from intercept.milter.conftest import E2E_POLICY, smtp_outcome, start_milter_process
from support.sendmail import SendmailInstance, require_sendmail_root
from support.smtp_sink import Received, Sink, smtp_sink

SENDER = "x@remote.example"
RCPT = "alice@test.example"


@dataclass
class SendmailGateway:
    sendmail: SendmailInstance
    stack: Stack
    sink: Sink
    socket: str

    def arrived(self, mid: str) -> list[Received]:
        return [m for m in self.sink.messages if mid.encode() in m.data]


@pytest.fixture(scope="module")
def gw() -> Iterator[SendmailGateway]:
    root = require_sendmail_root()
    folder = Path(tempfile.mkdtemp(prefix="mwsendmail-"))
    socket = f"inet:{free_port()}@127.0.0.1"
    with smtp_sink() as (sink, relay_port):
        sendmail = SendmailInstance.create(
            folder / "sendmail", root, port=free_port(), relay_port=relay_port, milter=socket
        )
        stack = Stack.create(folder / "mw", extra_toml=E2E_POLICY)
        try:
            stack.start_daemon()
            start_milter_process(stack, socket)
            sendmail.start()
            yield SendmailGateway(sendmail, stack, sink, socket)
        finally:
            stack.stop_all()
            sendmail.stop()
    if not os.environ.get("MAILWARDEN_KEEP_TEST_ROOT"):
        shutil.rmtree(folder, ignore_errors=True)


def test_clean_mail_is_relayed_with_headers(gw: SendmailGateway) -> None:
    raw, mid = make_message(sender=SENDER, to=RCPT)
    code, text = smtp_outcome(gw.sendmail.port, SENDER, [RCPT], raw)
    assert code == 250, text
    wait_until(lambda: len(gw.arrived(mid)) == 1, 30, "relay to the sink")
    data = gw.arrived(mid)[0].data
    assert b"\nX-Virus-Status: Clean\r\n" in data
    assert b"\nX-Virus-Scanned: mailwarden " in data
    assert b" on gw.test.example\r\n" in data


@pytest.mark.parametrize("attachment", [EICAR, eicar_zip()], ids=["plain", "zip"])
def test_infected_mail_is_rejected_at_end_of_data_with_our_text(
    gw: SendmailGateway, attachment: bytes
) -> None:
    raw, mid = make_message(sender=SENDER, to=RCPT, attachment=attachment)
    code, text = smtp_outcome(gw.sendmail.port, SENDER, [RCPT], raw)
    assert code == 554, text
    assert "5.7.1 Infected: Eicar-Test-Signature" in text
    assert not gw.sendmail.queue()
    assert not gw.arrived(mid)


def test_milter_down_tempfails_and_the_retry_after_restart_is_relayed(
    gw: SendmailGateway,
) -> None:
    raw, mid = make_message(sender=SENDER, to=RCPT)
    gw.stack.procs.pop("milter").stop()
    try:
        code, text = smtp_outcome(gw.sendmail.port, SENDER, [RCPT], raw)
        assert 400 <= code < 500, text
        assert not gw.sendmail.queue()
    finally:
        start_milter_process(gw.stack, gw.socket)
    assert not gw.arrived(mid)
    code, text = smtp_outcome(gw.sendmail.port, SENDER, [RCPT], raw)
    assert code == 250, text
    wait_until(lambda: len(gw.arrived(mid)) == 1, 30, "relay after the restart")
    assert b"\nX-Virus-Status: Clean\r\n" in gw.arrived(mid)[0].data


def test_daemon_down_is_a_temporary_failure(gw: SendmailGateway) -> None:
    gw.stack.stop_daemon()
    try:
        raw, mid = make_message(sender=SENDER, to=RCPT)
        code, text = smtp_outcome(gw.sendmail.port, SENDER, [RCPT], raw)
        assert code == 451, text
        assert not gw.sendmail.queue()
    finally:
        gw.stack.start_daemon()
    assert not gw.arrived(mid)
