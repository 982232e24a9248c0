"""Hand a notification to the mail system: SMTP to a server, or the sendmail program.

Usage::

    send_message(data, sender="", recipient="bob@example.org", settings=settings)

An empty ``sender`` is the null envelope sender ``<>``, so a notification
that cannot be delivered never bounces back to us.

SECURITY: talks to the configured server or runs the configured program,
with arguments passed as a list (no shell); the recipient was checked by
``plan.valid_address`` and cannot start with ``-``, being an address.
"""

from __future__ import annotations

import smtplib
import subprocess

from mailwarden.errors import MailwardenError
from mailwarden.notify.settings import NotifySettings


class SendError(MailwardenError):
    """A notification could not be handed on (logged; the mail it is about is unaffected)."""


def send_message(data: bytes, *, sender: str, recipient: str, settings: NotifySettings) -> None:
    if settings.transport == "sendmail":
        _sendmail(data, sender, recipient, settings)
    else:
        _smtp(data, sender, recipient, settings)


def _smtp(data: bytes, sender: str, recipient: str, settings: NotifySettings) -> None:
    options = ["SMTPUTF8"] if not (sender + recipient).isascii() else []
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout) as smtp:
            smtp.sendmail(sender, [recipient], data, mail_options=options)
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = next(iter(exc.recipients.values()))
        raise SendError(
            f"{settings.smtp_host}:{settings.smtp_port} refused {recipient}: "
            f"{code} {text.decode(errors='replace')}"
        ) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise SendError(
            f"cannot send to {recipient} through {settings.smtp_host}:{settings.smtp_port}: {exc}"
        ) from exc


def _sendmail(data: bytes, sender: str, recipient: str, settings: NotifySettings) -> None:
    argv = [settings.sendmail, "-i", "-f", sender or "<>", "--", recipient]
    try:
        done = subprocess.run(
            argv, input=data, capture_output=True, timeout=settings.timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SendError(f"cannot run {settings.sendmail}: {exc}") from exc
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip()[:300]
        raise SendError(f"{settings.sendmail} exited with {done.returncode}: {err}")
