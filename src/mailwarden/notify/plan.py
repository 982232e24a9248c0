"""Who is told about a message: a pure function of the verdict, action and settings.

Usage::

    for notice in plan(message, action, settings):
        notice.role, notice.to          # "admin", ("postmaster",)

Rules (docs/notifications.md has the table):

* nothing for clean mail, for a released message (it was notified about
  when it was quarantined), for mail the policy defers for every recipient (it
  comes back and is decided again), or for an automatic message
  (``loop.is_automatic``: null sender, ``Auto-Submitted``, our header);
* the administrator, for the categories and directions of ``admin_*``;
* each recipient whose copy was held back (quarantined, discarded, refused),
  one notice each, for ``recipient_*``;
* the envelope sender only for ``sender_*`` (empty by default: senders of
  viruses are forged, and telling them is backscatter).

SECURITY: addresses come from the hostile envelope; one that is not a plain
``local@domain`` (spaces, controls, brackets, over 320 characters) gets no
notice, so no envelope value can reach an SMTP command or a header unchecked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailwarden.message import Message
from mailwarden.notify.loop import is_automatic
from mailwarden.notify.settings import NotifySettings
from mailwarden.policy import Action, ActionKind

_ADDRESS = re.compile(r"^[^\s<>()\[\],;:\\\"@\x00-\x1f\x7f]{1,64}(@[A-Za-z0-9._-]{1,255})?$")


@dataclass(frozen=True, slots=True)
class Notice:
    role: str
    category: str
    direction: str
    to: str


def valid_address(address: str) -> bool:
    """A plain address (``local@domain``, or a bare local part such as ``postmaster``)."""
    return len(address) <= 320 and bool(_ADDRESS.match(address))


def plan(message: Message, action: Action, settings: NotifySettings) -> list[Notice]:
    """The notices to send about ``message``; see the module documentation."""
    category = action.category
    direction = action.direction.value
    if not settings.enabled or category == "clean" or action.released:
        return []
    kinds = [o.kind for _, o in action.outcomes] or [action.whole.kind]
    if all(k is ActionKind.DEFER for k in kinds):
        return []
    if is_automatic(message.raw, message.envelope.sender):
        return []
    notices: list[Notice] = []
    if settings.wants("admin", category, direction):
        notices += [Notice("admin", category, direction, a) for a in settings.admin]
    if settings.wants("recipient", category, direction):
        held = [r for r, o in action.outcomes if _held(o.kind)]
        if not action.outcomes and _held(action.whole.kind):
            held = list(message.envelope.recipients)
        notices += [Notice("recipient", category, direction, r) for r in held]
    held_any = any(_held(k) for k in kinds)
    if held_any and settings.wants("sender", category, direction):
        notices.append(Notice("sender", category, direction, message.envelope.sender))
    seen: set[tuple[str, str]] = set()
    out = []
    for n in notices:
        address = n.to.strip().strip("<>")
        key = (n.role, address.lower())
        if key in seen or not valid_address(address):
            continue
        seen.add(key)
        out.append(Notice(n.role, n.category, n.direction, address))
    return out


def _held(kind: ActionKind) -> bool:
    return kind in (ActionKind.QUARANTINE, ActionKind.DISCARD, ActionKind.REJECT)
