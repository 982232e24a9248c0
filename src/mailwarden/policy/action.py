"""The Action contract: what the policy says to do with one message.

:func:`mailwarden.policy.decide` returns an :class:`Action`.  It holds one
:class:`Outcome` per envelope recipient (for agents that answer per recipient:
LMTP, the after-queue filter, the MDA) and :attr:`Action.whole`, the strictest
of them folded by :func:`fold` (for agents that can only answer once: the SMTP
proxy, milter).  Every outcome carries the SMTP reply, so every agent
translates the same way::

    action = decide(verdict, message, policy, mode=Mode.BEFORE_QUEUE)
    smtp.reply(str(action.whole.reply))            # "554 5.7.1 Infected: Eicar-..."
    for outcome, rcpts in action.groups(): ...     # one delivery per outcome

SECURITY: plain immutable data.  Reply texts and header values are built from
signature names and scan reasons only, cleaned by :func:`safe_text`; nothing
from the message body or its headers reaches them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from mailwarden.message import Direction


class ActionKind(enum.StrEnum):
    ACCEPT = "accept"
    TAG = "tag"
    QUARANTINE = "quarantine"
    REJECT = "reject"
    DEFER = "defer"
    DISCARD = "discard"


#: Folding order: the higher wins when one answer must serve every recipient.
#: Anything that does not deliver beats delivery; a refusal beats silent
#: dropping because the sender learns of it; a retry beats everything because
#: it loses nothing and lets the next attempt decide again.
STRICTNESS: dict[ActionKind, int] = {
    ActionKind.ACCEPT: 0,
    ActionKind.TAG: 1,
    ActionKind.QUARANTINE: 2,
    ActionKind.DISCARD: 3,
    ActionKind.REJECT: 4,
    ActionKind.DEFER: 5,
}

#: Kinds after which the message reaches the recipient.
DELIVERING = frozenset({ActionKind.ACCEPT, ActionKind.TAG})


@dataclass(frozen=True, slots=True)
class SmtpReply:
    """An SMTP reply: ``554 5.7.1 Infected: Eicar-Test-Signature``."""

    code: int
    status: str
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.status} {self.text}"

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500

    @property
    def permanent(self) -> bool:
        return self.code >= 500


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happens to the message for one recipient.

    ``keep_copy`` means the action layer writes the message to the quarantine
    (always for ``quarantine``; for ``reject``/``discard`` when
    ``[policy] keep_rejected`` is set).  ``subject_tag`` is set for ``tag``
    only.  ``rule`` names the setting that decided, for logs and
    ``config check``.
    """

    kind: ActionKind
    reply: SmtpReply
    subject_tag: str = ""
    keep_copy: bool = False
    rule: str = ""

    @property
    def delivers(self) -> bool:
        return self.kind in DELIVERING

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "reply": str(self.reply),
            "subject_tag": self.subject_tag,
            "keep_copy": self.keep_copy,
            "rule": self.rule,
        }


@dataclass(frozen=True, slots=True)
class Action:
    """The policy's answer for one message.

    ``category`` is the verdict status the policy acted on; ``status`` is the
    ``X-Virus-Status`` value; ``add_headers`` says whether delivered copies get
    the ``X-Virus-*`` headers and ``strip`` which arriving headers to remove.
    ``outcomes`` pairs each envelope recipient with its outcome, in envelope
    order (empty when the envelope has no recipients); ``whole`` is their fold.
    """

    category: str
    status: str
    whole: Outcome
    outcomes: tuple[tuple[str, Outcome], ...] = ()
    add_headers: bool = True
    strip: tuple[str, ...] = ()
    released: bool = False
    #: the direction the policy used (``classify``), for logs and the history
    direction: Direction = Direction.UNKNOWN

    @property
    def kind(self) -> ActionKind:
        return self.whole.kind

    @property
    def reply(self) -> SmtpReply:
        return self.whole.reply

    @property
    def keep_copy(self) -> bool:
        return self.whole.keep_copy

    def for_recipient(self, recipient: str) -> Outcome:
        """The outcome for ``recipient`` (compared case-insensitively); ``whole`` if absent."""
        wanted = recipient.lower()
        for rcpt, outcome in self.outcomes:
            if rcpt.lower() == wanted:
                return outcome
        return self.whole

    def groups(self) -> tuple[tuple[Outcome, tuple[str, ...]], ...]:
        """Recipients that share an outcome, for agents that deliver once per outcome."""
        grouped: dict[Outcome, list[str]] = {}
        for rcpt, outcome in self.outcomes:
            grouped.setdefault(outcome, []).append(rcpt)
        return tuple((o, tuple(r)) for o, r in grouped.items())

    def delivered_to(self) -> tuple[str, ...]:
        return tuple(r for r, o in self.outcomes if o.delivers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "status": self.status,
            "kind": self.kind.value,
            "reply": str(self.reply),
            "whole": self.whole.to_dict(),
            "recipients": [{"recipient": r, **o.to_dict()} for r, o in self.outcomes],
            "released": self.released,
            "direction": self.direction.value,
        }


def fold(outcomes: tuple[Outcome, ...] | list[Outcome]) -> Outcome:
    """The strictest outcome, for agents that give one answer for every recipient.

    The quarantine copy is kept if any recipient's outcome keeps one, so a
    recipient whose policy says "quarantine" still finds the message there
    when another recipient's "reject" wins.
    """
    if not outcomes:
        raise ValueError("fold() needs at least one outcome")
    strictest = outcomes[0]
    for outcome in outcomes[1:]:
        if STRICTNESS[outcome.kind] > STRICTNESS[strictest.kind]:
            strictest = outcome
    keep = any(o.keep_copy for o in outcomes)
    if keep == strictest.keep_copy:
        return strictest
    return Outcome(
        kind=strictest.kind,
        reply=strictest.reply,
        subject_tag=strictest.subject_tag,
        keep_copy=keep,
        rule=strictest.rule,
    )


def safe_text(text: str, limit: int = 200) -> str:
    """Printable ASCII without CR/LF, for SMTP replies and header values."""
    cleaned = "".join(ch if " " <= ch <= "~" else "?" for ch in text)
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."
