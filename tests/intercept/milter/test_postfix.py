"""End to end through a real Postfix: ``smtpd_milters`` and ``non_smtpd_milters``.

The SMTP client talks to Postfix's smtpd, which hands every message to
``mailwarden milter`` (on a unix socket) before it queues it; the daemon
scans with its bundled signatures.  ``milter_default_action = tempfail``:
with the milter gone the client must get a 4xx and nothing may be queued.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from intercept.harness import EICAR, Stack, wait_until
from intercept.mail import eicar_zip, make_message
from intercept.milter.conftest import E2E_POLICY, smtp_outcome, start_milter_process
from support.postfix import DOMAIN, REMOTE, PostfixInstance, milter_instance, submit_local
from support.smtp_sink import smtp_sink
from support.tools import missing


@dataclass
class MilterGateway:
    postfix: PostfixInstance
    stack: Stack
    socket: str

    @property
    def port(self) -> int:
        return self.postfix.ports["milter"]

    def in_box(self, user: str, mid: str) -> list[object]:
        return [m for m in self.postfix.mailbox(user) if m["Message-ID"] == mid]


@pytest.fixture(scope="module")
def gw() -> Iterator[MilterGateway]:
    if shutil.which("postfix") is None and not Path("/usr/sbin/postfix").exists():
        missing("postfix is not installed (apt-get install postfix)")
    if os.geteuid() != 0:
        missing("a private Postfix instance needs root")
    root = Path(tempfile.mkdtemp(prefix="mwmilter-"))
    root.chmod(0o755)  # postfix's processes reach the milter socket below it
    (root / "mw").mkdir(mode=0o755)
    socket = f"unix:{root / 'mw' / 'milter.sock'}"
    with smtp_sink() as (_, relay_port):
        postfix = milter_instance(
            root / "postfix", relay_port=relay_port, milters={"milter": socket}
        )
        stack = Stack.create(root / "mw", extra_toml=E2E_POLICY)
        try:
            stack.start_daemon()
            start_milter_process(stack, socket)
            postfix.start()
            yield MilterGateway(postfix, stack, socket)
        finally:
            stack.stop_all()
            postfix.stop()
    if not os.environ.get("MAILWARDEN_KEEP_TEST_ROOT"):
        shutil.rmtree(root, ignore_errors=True)


def _message(to: str = f"alice@{DOMAIN}", **kw: object) -> tuple[bytes, str]:
    return make_message(sender=f"x@{REMOTE}", to=to, **kw)  # type: ignore[arg-type]


def test_clean_mail_is_delivered_with_headers(gw: MilterGateway) -> None:
    raw, mid = _message()
    code, text = smtp_outcome(gw.port, f"x@{REMOTE}", [f"alice@{DOMAIN}"], raw)
    assert code == 250, text
    wait_until(lambda: len(gw.in_box("alice", mid)) == 1, 30, "delivery")
    (msg,) = gw.in_box("alice", mid)
    assert msg["X-Virus-Status"] == "Clean"  # type: ignore[index]
    assert msg["X-Virus-Scanned"].startswith("mailwarden ")  # type: ignore[index]
    assert msg["X-Virus-Scanned"].endswith(" on gw.test.example")  # type: ignore[index]


@pytest.mark.parametrize("attachment", [EICAR, eicar_zip()], ids=["plain", "zip"])
def test_infected_mail_is_rejected_at_end_of_data_with_our_text(
    gw: MilterGateway, attachment: bytes
) -> None:
    raw, mid = _message(attachment=attachment)
    code, text = smtp_outcome(gw.port, f"x@{REMOTE}", [f"alice@{DOMAIN}"], raw)
    assert code == 554, text
    assert "5.7.1 Infected: Eicar-Test-Signature" in text
    assert not gw.postfix.queue()
    assert not gw.in_box("alice", mid)


def test_daemon_down_is_a_temporary_failure(gw: MilterGateway) -> None:
    gw.stack.stop_daemon()
    try:
        raw, mid = _message(to=f"bob@{DOMAIN}")
        code, text = smtp_outcome(gw.port, f"x@{REMOTE}", [f"bob@{DOMAIN}"], raw)
        assert code == 451, text
        assert not gw.postfix.queue()
    finally:
        gw.stack.start_daemon()
    assert not gw.in_box("bob", mid)


def test_milter_down_tempfails_and_the_retry_after_restart_is_delivered(
    gw: MilterGateway,
) -> None:
    raw, mid = _message(to=f"carol@{DOMAIN}")
    gw.stack.procs.pop("milter").stop()
    try:
        code, text = smtp_outcome(gw.port, f"x@{REMOTE}", [f"carol@{DOMAIN}"], raw)
        assert 400 <= code < 500, text
        assert not gw.postfix.queue()
    finally:
        start_milter_process(gw.stack, gw.socket)
    assert not gw.in_box("carol", mid)
    code, text = smtp_outcome(gw.port, f"x@{REMOTE}", [f"carol@{DOMAIN}"], raw)
    assert code == 250, text
    wait_until(lambda: len(gw.in_box("carol", mid)) == 1, 30, "delivery after the restart")
    assert gw.in_box("carol", mid)[0]["X-Virus-Status"] == "Clean"  # type: ignore[index]


def test_local_submission_goes_through_non_smtpd_milters(gw: MilterGateway) -> None:
    raw, mid = _message()
    submit_local(gw.postfix, raw, f"root@{DOMAIN}", [f"alice@{DOMAIN}"])
    wait_until(lambda: len(gw.in_box("alice", mid)) == 1, 60, "local delivery")
    assert gw.in_box("alice", mid)[0]["X-Virus-Status"] == "Clean"  # type: ignore[index]
