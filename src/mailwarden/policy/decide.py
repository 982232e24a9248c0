"""``decide(verdict, message, config) -> Action``: the policy, as a pure function.

Same inputs, same action: no I/O, no clock, no randomness.  That is what lets
every agent share it and lets the tests state its properties.  Usage::

    policy = Policy.from_config(config)          # once, at start-up
    action = decide(verdict, message, policy, mode=Mode.AFTER_QUEUE)

``mode`` says whether the agent can still refuse the mail in the SMTP dialogue
(``before-queue``: the SMTP proxy, milter) or the MTA has already accepted it
(``after-queue``: the content filter, LMTP, the MDA, qmail, the download
proxies).  A reject after the queue would make the MTA send a bounce to a
sender that is forged more often than not, so there it becomes what
``[policy] after_queue_reject`` says (quarantine by default).  Without
``mode``, :func:`mode_of` guesses from the agent's name and falls back to
after-queue, the side that never causes backscatter.

``released=True`` (the action layer verified the message's release mark) makes
every recipient's outcome ``accept``: a released message is never
quarantined again.

SECURITY: the verdict and envelope are untrusted data; names from them reach
replies and headers only through :func:`safe_text`.
"""

from __future__ import annotations

import enum

from mailwarden.config import Config
from mailwarden.message import Envelope, Message
from mailwarden.policy.action import Action, ActionKind, Outcome, SmtpReply, fold, safe_text
from mailwarden.policy.direction import classify
from mailwarden.policy.rules import Policy
from mailwarden.verdict import Category, Status, Verdict

#: Headers removed from arriving mail when ``[headers] strip_incoming`` is set
#: (a forged "Clean" must not reach the reader or a Sieve rule).
STATUS_HEADERS = ("X-Virus-Scanned", "X-Virus-Status")


class Mode(enum.StrEnum):
    BEFORE_QUEUE = "before-queue"
    AFTER_QUEUE = "after-queue"


#: Agents that answer inside the client's SMTP transaction.
BEFORE_QUEUE_AGENTS = frozenset({"smtp-proxy", "milter"})


def mode_of(envelope: Envelope) -> Mode:
    return Mode.BEFORE_QUEUE if envelope.agent in BEFORE_QUEUE_AGENTS else Mode.AFTER_QUEUE


def decide(
    verdict: Verdict,
    message: Message,
    config: Config | Policy,
    *,
    mode: Mode | None = None,
    released: bool = False,
) -> Action:
    """Choose the action for ``message`` given its ``verdict``; see the module docs."""
    policy = config if isinstance(config, Policy) else Policy.from_config(config)
    envelope = message.envelope
    mode = mode or mode_of(envelope)
    category = verdict.status.value
    direction = classify(envelope, policy.network)

    def outcome_for(recipient: str | None) -> Outcome:
        if released:
            return Outcome(ActionKind.ACCEPT, _OK, rule="released from quarantine")
        if verdict.status is Status.CLEAN:
            return Outcome(ActionKind.ACCEPT, _OK, rule="clean")
        kind, rule = policy.lookup(category, direction, envelope.sender, recipient)
        return _outcome(kind, rule, verdict, policy, mode)

    outcomes = tuple((r, outcome_for(r)) for r in envelope.recipients)
    whole = fold([o for _, o in outcomes]) if outcomes else outcome_for(None)
    return Action(
        category=category,
        status=virus_status(verdict),
        whole=whole,
        outcomes=outcomes,
        add_headers=policy.add_headers,
        strip=STATUS_HEADERS if policy.strip_incoming else (),
        released=released,
        direction=direction,
    )


def virus_status(verdict: Verdict) -> str:
    """The ``X-Virus-Status`` value: Clean, Infected (name), Suspicious (name), Unscanned (why)."""
    if verdict.status is Status.CLEAN:
        return "Clean"
    if verdict.status is Status.INFECTED:
        return f"Infected ({_finding(verdict, Category.INFECTED)})"
    if verdict.status is Status.SUSPICIOUS:
        return f"Suspicious ({_finding(verdict, Category.SUSPICIOUS)})"
    if verdict.status is Status.UNSCANNED:
        return f"Unscanned ({safe_text(verdict.reason or 'unknown reason', 120)})"
    why = safe_text(verdict.reason, 100) if verdict.reason else ""
    return f"Unscanned (scan error: {why})" if why else "Unscanned (scan error)"


_OK = SmtpReply(250, "2.0.0", "Ok")
_LABEL = {"infected": "Infected", "suspicious": "Suspicious"}


def _finding(verdict: Verdict, category: Category) -> str:
    for finding in verdict.findings:
        if finding.category is category:
            return safe_text(finding.name, 120)
    return safe_text(verdict.name or "unknown", 120)


def _what(verdict: Verdict) -> str:
    """What was found, for reply texts: ``Infected: Eicar-Test-Signature``."""
    category = verdict.status.value
    if category in _LABEL:
        return f"{_LABEL[category]}: {_finding(verdict, Category(category))}"
    reason = safe_text(verdict.reason or "", 120)
    prefix = "Not scanned" if verdict.status is Status.UNSCANNED else "Scan failed"
    return f"{prefix}: {reason}" if reason else prefix


def _outcome(kind: ActionKind, rule: str, verdict: Verdict, policy: Policy, mode: Mode) -> Outcome:
    if kind is ActionKind.REJECT and mode is Mode.AFTER_QUEUE:
        if policy.after_queue_reject == "quarantine":
            kind, rule = ActionKind.QUARANTINE, f"{rule}, policy.after_queue_reject"
        elif policy.after_queue_reject == "discard":
            kind, rule = ActionKind.DISCARD, f"{rule}, policy.after_queue_reject"
    category = verdict.status.value
    keep = kind is ActionKind.QUARANTINE or (
        policy.keep_rejected and kind in (ActionKind.REJECT, ActionKind.DISCARD)
    )
    tag = policy.subject_tags.get(category, "") if kind is ActionKind.TAG else ""
    return Outcome(kind, _reply(kind, verdict), subject_tag=tag, keep_copy=keep, rule=rule)


def _reply(kind: ActionKind, verdict: Verdict) -> SmtpReply:
    what = _what(verdict)
    if kind is ActionKind.REJECT:
        return SmtpReply(554, "5.7.1", what)
    if kind is ActionKind.DEFER:
        if verdict.status is Status.ERROR:
            return SmtpReply(451, "4.7.1", "Scanning temporarily unavailable")
        return SmtpReply(451, "4.7.1", f"{what}; try again later")
    if kind is ActionKind.QUARANTINE:
        return SmtpReply(250, "2.7.0", "Ok: quarantined")
    if kind is ActionKind.DISCARD:
        return SmtpReply(250, "2.7.0", "Ok: discarded")
    return _OK
