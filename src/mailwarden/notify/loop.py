"""Loop protection: which messages must never cause a notification.

Usage::

    if is_automatic(message.raw, message.envelope.sender): return   # no notice

A message is automatic when its envelope sender is null (a bounce or another
notification), when it carries ``Auto-Submitted:`` with any value but ``no``
(RFC 3834), or when it carries our own :data:`NOTIFICATION_HEADER`.  Our own
notifications carry all three marks, so two gateways that notify each other
stop after one message.

SECURITY: reads the hostile message's top-level header block only, up to
:data:`HEADER_LIMIT` bytes, with a linear scan that never raises.  The marks
can be forged, and forging them only suppresses notifications about that
message: it never hides the message from the scan or the policy.
"""

from __future__ import annotations

import re

#: Our header on every notification; its presence on scanned mail stops a loop.
NOTIFICATION_HEADER = "X-Mailwarden-Notification"
#: Header bytes read for the check (a longer block is cut there).
HEADER_LIMIT = 64 * 1024

_AUTO = re.compile(rb"^auto-submitted[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE | re.MULTILINE)
_OURS = re.compile(rb"^x-mailwarden-notification[ \t]*:", re.IGNORECASE | re.MULTILINE)


def header_block(raw: bytes, limit: int = HEADER_LIMIT) -> bytes:
    """The top-level header block of ``raw`` (at most ``limit`` bytes)."""
    head = raw[:limit]
    # the block ends with its last field's line end, before the empty line
    ends = [i + 2 for i in (head.find(b"\r\n\r\n"),) if i >= 0]
    ends += [i + 1 for i in (head.find(b"\n\n"),) if i >= 0]
    return head[: min(ends)] if ends else head


def is_null_sender(sender: str) -> bool:
    return sender.strip().strip("<>").strip() == ""


def is_automatic(raw: bytes, sender: str) -> bool:
    """Whether no notification may be sent about this message; see the module docs."""
    if is_null_sender(sender):
        return True
    head = header_block(raw)
    if _OURS.search(head):
        return True
    for m in _AUTO.finditer(head):
        value = m.group(1).split(b";", 1)[0].strip().lower()
        if value != b"no":
            return True
    return False
