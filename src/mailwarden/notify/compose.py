"""Build a notification message with the email package.

Usage::

    msg = compose(subject, body, to="bob@example.org", notice=notice, settings=settings)
    data = msg.as_bytes()          # CRLF line ends, ready for SMTP

Headers are set through :class:`email.message.EmailMessage`, which folds and
encodes them and refuses a value containing a line break; nothing is pasted
into a header block by hand.  Every notification carries
``Auto-Submitted: auto-generated`` (RFC 3834) and our
``X-Mailwarden-Notification`` header, the marks ``loop.is_automatic`` looks
for.  The administrator's notice also carries the original header block as a
``text/rfc822-headers`` part (RFC 6522), for the Received chain.

SECURITY: subject and body were rendered from values ``context.py`` made
safe; the subject is reduced to one line again here, and the To address was
checked by ``plan.valid_address``.
"""

from __future__ import annotations

import email.policy
import email.utils
import time
from email.message import EmailMessage

from mailwarden import __version__
from mailwarden.notify.context import clean
from mailwarden.notify.loop import NOTIFICATION_HEADER
from mailwarden.notify.plan import Notice
from mailwarden.notify.settings import NotifySettings


def compose(
    subject: str,
    body: str,
    *,
    notice: Notice,
    settings: NotifySettings,
    now: float | None = None,
    original_headers: bytes | None = None,
) -> EmailMessage:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = settings.from_address
    msg["To"] = notice.to
    msg["Subject"] = clean(subject, 400)
    msg["Date"] = email.utils.formatdate(time.time() if now is None else now, localtime=False)
    msg["Message-ID"] = email.utils.make_msgid("mailwarden", domain=clean(settings.host, 100))
    msg["Auto-Submitted"] = "auto-generated"
    msg[NOTIFICATION_HEADER] = f"{notice.role}; category={notice.category}; v={__version__}"
    # 7-bit on the wire whatever the text: no 8BITMIME needed on the way
    cte = "7bit" if body.isascii() else "quoted-printable"
    msg.set_content(body, subtype="plain", charset="utf-8", cte=cte)
    if original_headers is not None:
        # as amavis does for the administrator: the full header block, base64
        # encoded, so its bytes cannot touch the notification's own structure
        msg.add_attachment(
            original_headers, maintype="text", subtype="rfc822-headers", disposition="inline"
        )
    return msg
