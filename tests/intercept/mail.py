"""Test messages and an SMTP client helper for the agent tests.

SECURITY: test-only; EICAR is the harmless antivirus test string.
"""

from __future__ import annotations

import io
import smtplib
import uuid
import zipfile
from email.message import EmailMessage

from intercept.harness import EICAR


def make_message(
    *,
    sender: str,
    to: str,
    subject: str = "hello",
    attachment: bytes | None = None,
    filename: str = "eicar.com",
) -> tuple[bytes, str]:
    """A message and its unique Message-ID."""
    msg = EmailMessage()
    mid = f"<{uuid.uuid4().hex}@client.example>"
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = mid
    msg.set_content("Just a test message.\n")
    if attachment is not None:
        msg.add_attachment(
            attachment, maintype="application", subtype="octet-stream", filename=filename
        )
    return msg.as_bytes().replace(b"\n", b"\r\n"), mid


def eicar_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("readme.txt", "nothing to see\n")
        zf.writestr("eicar.com", EICAR)
    return out.getvalue()


def send(
    port: int,
    sender: str,
    recipients: list[str],
    data: bytes,
    *,
    helo: str = "orig-client.example",
) -> dict[str, tuple[int, bytes]]:
    """Send through SMTP; returns the refused recipients (raises on a DATA refusal)."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname=helo, timeout=120) as client:
        return client.sendmail(sender, recipients, data)


def data_reply(port: int, sender: str, recipients: list[str], data: bytes) -> tuple[int, str]:
    """The reply to the end of DATA, whatever it is."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname="orig-client.example", timeout=120) as c:
        c.ehlo()
        code, _ = c.mail(sender)
        assert code == 250
        for rcpt in recipients:
            code, text = c.rcpt(rcpt)
            assert code == 250, text
        code, text = c.data(data)
        return code, text.decode(errors="replace")
