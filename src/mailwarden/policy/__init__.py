"""Policy: from a verdict to an action, as a pure function.

Public API::

    policy = Policy.from_config(config)                      # compile once
    action = decide(verdict, message, policy, mode=Mode.BEFORE_QUEUE)
    action.whole.kind, str(action.whole.reply)               # one answer for all
    action.for_recipient("bob@example.org")                  # or one per recipient
    direction = classify(envelope, policy.network)
    print(describe(policy))                                  # `config check`

Modules: ``action`` (the Action contract and :func:`fold`), ``direction``
(inbound/outbound), ``rules`` (compiled settings and precedence), ``decide``,
``describe``.

SECURITY: nothing here does I/O or holds privileges; see each module.
"""

from mailwarden.policy.action import (
    DELIVERING,
    STRICTNESS,
    Action,
    ActionKind,
    Outcome,
    SmtpReply,
    fold,
    safe_text,
)
from mailwarden.policy.decide import (
    BEFORE_QUEUE_AGENTS,
    STATUS_HEADERS,
    Mode,
    decide,
    mode_of,
    virus_status,
)
from mailwarden.policy.describe import describe
from mailwarden.policy.direction import Network, classify
from mailwarden.policy.rules import Override, Policy

__all__ = [
    "BEFORE_QUEUE_AGENTS",
    "DELIVERING",
    "STATUS_HEADERS",
    "STRICTNESS",
    "Action",
    "ActionKind",
    "Mode",
    "Network",
    "Outcome",
    "Override",
    "Policy",
    "SmtpReply",
    "classify",
    "decide",
    "describe",
    "fold",
    "mode_of",
    "safe_text",
    "virus_status",
]
