"""The values a notification template sees, every one made safe first.

Usage::

    ctx = mail_context(message, verdict, action, quarantine_id=qid, host="mx1")
    ctx["subject"], ctx["findings"][0]["name"], ctx["sender"]

Templates render text/plain mail without escaping, so the safety is here:
every value that comes from the mail (addresses, Subject, From, Message-ID,
attachment names, scan reasons) goes through :func:`clean`, which turns
control, format and line-separator characters into ``?`` and bounds the
length.  No value can therefore carry a line break into a header, and the
notification's headers are built by the email package, never by pasting
text (``compose.py``).

SECURITY: the message is hostile; only its top-level header block is read
(bounded by ``loop.HEADER_LIMIT``) with the lenient parser, which never raises.
"""

from __future__ import annotations

import re
from typing import Any

from mailwarden.engine.mime.headers import decode_rfc2047
from mailwarden.message import Message
from mailwarden.notify.loop import header_block
from mailwarden.policy import Action
from mailwarden.verdict import Verdict, display_name

#: Recipients listed in one notification; the rest are counted.
MAX_LISTED = 50


def clean(value: object, limit: int = 200) -> str:
    """``value`` as one printable line: no control characters, at most ``limit`` long."""
    return " ".join(display_name(str(value), limit).split())


def mail_context(
    message: Message,
    verdict: Verdict,
    action: Action,
    *,
    quarantine_id: str | None,
    host: str,
) -> dict[str, Any]:
    """Every value a template may use; docs/notifications.md lists them."""
    env = message.envelope
    headers = _headers(message.raw)
    recipients = [clean(r, 320) for r in env.recipients[:MAX_LISTED]]
    held = [clean(r, 320) for r, o in action.outcomes if not o.delivers][:MAX_LISTED]
    if not action.outcomes and not action.whole.delivers:
        held = list(recipients)
    findings = [
        {"name": clean(f.name), "part": clean(f.part), "engine": clean(f.engine, 40)}
        for f in verdict.findings[:MAX_LISTED]
    ]
    return {
        "category": action.category,
        "direction": action.direction.value,
        "action": action.kind.value,
        "reply": clean(str(action.reply), 300),
        "status": clean(action.status, 300),
        "reason": clean(verdict.reason or ""),
        "findings": findings,
        "names": sorted({f["name"] for f in findings}),
        "sender": clean(env.sender, 320) or "<>",
        "recipients": recipients,
        "recipients_more": max(0, len(env.recipients) - MAX_LISTED),
        "held_recipients": held,
        "subject": headers.get("subject", ""),
        "from_header": headers.get("from", ""),
        "to_header": headers.get("to", ""),
        "date": headers.get("date", ""),
        "message_id": headers.get("message-id", ""),
        "quarantine_id": quarantine_id or "",
        "queue_id": clean(env.queue_id or ""),
        "client_address": clean(env.client_address or ""),
        "client_name": clean(env.client_name or ""),
        "helo": clean(env.helo or ""),
        "agent": clean(env.agent, 40),
        "point": env.point.value,
        "size": len(message.raw),
        "host": clean(host),
        "released": action.released,
    }


def _headers(raw: bytes) -> dict[str, str]:
    """Subject, From, To, Date and Message-ID of the top-level header block, decoded.

    Read by hand rather than with the email package: raw 8-bit values (UTF-8
    subjects sent without encoding) must survive, and the first occurrence of
    a field wins however malformed the rest is.
    """
    wanted = {b"subject", b"from", b"to", b"date", b"message-id"}
    out: dict[str, str] = {}
    unfolded = re.sub(rb"\r?\n[ \t]", b" ", header_block(raw))
    for line in unfolded.splitlines():
        name, colon, value = line.partition(b":")
        key = name.strip().lower()
        if not colon or key not in wanted or key.decode() in out:
            continue
        text = value.strip().decode("utf-8", "replace")
        out[key.decode()] = clean(decode_rfc2047(text), 300)
    return out
