"""EICAR through a real ``mailwarden smtp-filter``: the notices arrive at an SMTP server.

The daemon and the filter run as the CLI runs them; one recording SMTP sink
is both the filter's downstream and the server notifications go to.
"""

from __future__ import annotations

import email
import email.policy
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from intercept.harness import EICAR, Stack, free_port, wait_until
from intercept.mail import data_reply, make_message
from support.smtp_sink import Received, Sink, smtp_sink


@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[Sink, int]]:
    with smtp_sink() as (sink, sink_port):
        extra = f"""
[network]
local_domains = ["example.org"]

[headers]
hostname = "gw.example.org"

[notify]
admin = ["av-admin@example.org"]
smtp = "127.0.0.1:{sink_port}"
"""
        stack = Stack.create(Path(tempfile.mkdtemp(prefix="mwn-")), extra_toml=extra)
        try:
            stack.start_daemon()
            port = free_port()
            stack.start_agent(
                "filter", "smtp-filter", port, "--downstream", f"127.0.0.1:{sink_port}"
            )
            yield sink, port
        finally:
            stack.stop_all()


def _notices(sink: Sink, marker: str) -> list[Received]:
    return [
        m
        for m in sink.messages
        if b"X-Mailwarden-Notification" in m.data and marker.encode() in m.data
    ]


def test_eicar_notifies_the_admin_and_the_recipient(gateway: tuple[Sink, int]) -> None:
    sink, port = gateway
    subject = f"notify-e2e-{time.time_ns()}"
    raw, _ = make_message(
        sender="eve@remote.example", to="bob@example.org", subject=subject, attachment=EICAR
    )
    code, text = data_reply(port, "eve@remote.example", ["bob@example.org"], raw)
    assert code == 250, text  # after the queue: quarantined, not refused
    wait_until(lambda: len(_notices(sink, subject)) >= 2, 60, "two notifications")
    notices = {tuple(m.recipients): m for m in _notices(sink, subject)}
    assert set(notices) == {("av-admin@example.org",), ("bob@example.org",)}
    # no backscatter: nothing to the (forged) sender, and the mail itself was not delivered
    assert not [m for m in sink.messages if "eve@remote.example" in m.recipients]
    assert not [
        m
        for m in sink.messages
        if b"X-Mailwarden-Notification" not in m.data and subject.encode() in m.data
    ]
    admin = notices[("av-admin@example.org",)]
    assert admin.sender == "<>"
    parsed = email.message_from_bytes(admin.data, policy=email.policy.default)
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["X-Mailwarden-Notification"].startswith("admin; category=infected")
    assert parsed["From"] == "postmaster@gw.example.org"
    assert parsed["To"] == "av-admin@example.org"
    assert "Eicar-Test-Signature" in parsed["Subject"]
    text = parsed.get_body(("plain",))
    assert text is not None
    body = text.get_content()
    headers = [
        p for p in parsed.iter_attachments() if p.get_content_type() == "text/rfc822-headers"
    ]
    assert subject.encode() in headers[0].get_payload(decode=True)
    assert subject in body and "eve@remote.example" in body
    assert "mailwarden quarantine release " in body
    recipient = email.message_from_bytes(
        notices[("bob@example.org",)].data, policy=email.policy.default
    )
    assert recipient["Subject"].startswith("A message to you was held back: infected")


def test_clean_mail_and_automatic_mail_cause_no_notice(gateway: tuple[Sink, int]) -> None:
    sink, port = gateway
    subject = f"notify-quiet-{time.time_ns()}"
    clean, _ = make_message(sender="eve@remote.example", to="bob@example.org", subject=subject)
    assert data_reply(port, "eve@remote.example", ["bob@example.org"], clean)[0] == 250
    auto, _ = make_message(
        sender="eve@remote.example", to="bob@example.org", subject=subject, attachment=EICAR
    )
    auto = b"Auto-Submitted: auto-replied\r\n" + auto
    assert data_reply(port, "eve@remote.example", ["bob@example.org"], auto)[0] == 250
    bounce, _ = make_message(
        sender="MAILER-DAEMON", to="bob@example.org", subject=subject, attachment=EICAR
    )
    assert data_reply(port, "<>", ["bob@example.org"], bounce)[0] == 250
    # the clean one is delivered; by then the others were settled long ago
    wait_until(
        lambda: any(subject.encode() in m.data for m in sink.messages), 60, "the clean message"
    )
    # a marker message sent last: once its notice is in, earlier ones would be too
    marker = f"notify-marker-{time.time_ns()}"
    raw, _ = make_message(
        sender="eve@remote.example", to="bob@example.org", subject=marker, attachment=EICAR
    )
    assert data_reply(port, "eve@remote.example", ["bob@example.org"], raw)[0] == 250
    wait_until(lambda: len(_notices(sink, marker)) >= 2, 60, "the marker's notifications")
    assert _notices(sink, subject) == []
