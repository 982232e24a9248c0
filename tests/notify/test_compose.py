"""Header injection: hostile subjects, names and addresses never become header lines."""

from __future__ import annotations

import base64
import email
import email.policy
from pathlib import Path

from mailwarden.message import Message
from mailwarden.notify import NOTIFICATION_HEADER, Notice, TemplateBook, is_automatic
from mailwarden.notify.compose import compose
from mailwarden.notify.context import mail_context
from mailwarden.verdict import Finding, Status, Verdict
from notify.helpers import config, decided, message, settings

HOSTILE = (
    b"From: =?utf-8?q?Eve=0D=0ABcc=3A_victim=40example=2Enet?= <eve@remote.example>\r\n"
    b"To: bob@example.org\r\n"
    b"Subject: =?utf-8?b?"
    + base64.b64encode(b"hi\r\nBcc: victim@example.net\r\n\r\nforged body")
    + b"?=\r\n"
    b"Message-ID: <x@y>\r\n"
    b"\r\n"
    b"body\r\n"
)


def _notification(tmp_path: Path, raw: bytes, verdict: Verdict, role: str = "admin") -> bytes:
    cfg = config(tmp_path, '[policy]\ninfected = "quarantine"\n')
    msg: Message = message(raw)
    action = decided(cfg, msg, verdict)
    st = settings(cfg)
    ctx = mail_context(msg, verdict, action, quarantine_id="ab" * 16, host=st.host)
    subject, body = TemplateBook(None).render(role, action.category, "inbound", ctx)
    notice = Notice(role, action.category, "inbound", "bob@example.org")
    return compose(subject, body, notice=notice, settings=st).as_bytes()


def _headers(data: bytes) -> list[tuple[str, str]]:
    head = data.split(b"\r\n\r\n", 1)[0]
    return email.message_from_bytes(head + b"\r\n\r\n", policy=email.policy.compat32).items()


def test_a_hostile_subject_and_from_cannot_add_headers(tmp_path: Path) -> None:
    verdict = Verdict(Status.INFECTED, (Finding("Eicar-Test-Signature", "x", "clamav"),))
    data = _notification(tmp_path, HOSTILE, verdict)
    names = [n.lower() for n, _ in _headers(data)]
    assert "bcc" not in names
    assert names.count("to") == 1 and names.count("subject") == 1
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    body = parsed.get_content()
    assert "Subject:     hi??Bcc: victim@example.net????forged body" in body
    assert "\nBcc:" not in body


def test_hostile_finding_names_and_parts_stay_on_one_line(tmp_path: Path) -> None:
    verdict = Verdict(
        Status.INFECTED,
        (Finding("Evil\r\nBcc: x@y", "1/a\nSubject: owned\u202e.exe", "clamav"),),
    )
    data = _notification(tmp_path, b"Subject: s\r\n\r\nb\r\n", verdict)
    assert [n.lower() for n, _ in _headers(data)].count("subject") == 1
    subject = email.message_from_bytes(data, policy=email.policy.default)["Subject"]
    assert "\n" not in subject and "Evil??Bcc: x@y" in subject
    body = email.message_from_bytes(data, policy=email.policy.default).get_content()
    assert "1/a?Subject: owned?.exe" in body


def test_notifications_carry_the_loop_marks(tmp_path: Path) -> None:
    verdict = Verdict(Status.INFECTED, (Finding("Eicar-Test-Signature", "x", "clamav"),))
    data = _notification(tmp_path, b"Subject: s\r\n\r\nb\r\n", verdict, role="recipient")
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed[NOTIFICATION_HEADER].startswith("recipient; category=infected")
    assert parsed["From"] == "postmaster@gw.example.org"
    assert parsed["To"] == "bob@example.org"
    assert parsed["Message-ID"].endswith("@gw.example.org>")
    assert parsed.get_content_type() == "text/plain"
    # our notification, scanned on its way, never causes another
    assert is_automatic(data, "")
    assert is_automatic(data, "postmaster@gw.example.org")


def test_non_ascii_subjects_are_encoded(tmp_path: Path) -> None:
    raw = "Subject: Rechnung für März\r\n\r\nb\r\n".encode()
    verdict = Verdict(Status.INFECTED, (Finding("Eicar-Test-Signature", "x", "clamav"),))
    data = _notification(tmp_path, raw, verdict)
    assert data.isascii()
    body = email.message_from_bytes(data, policy=email.policy.default).get_content()
    assert "Rechnung für März" in body
