"""The effective policy as text, for ``mailwarden config check``.

Prints, for each direction and category, the action chosen before and after
the queue (after ``after_queue_reject`` is applied) with the setting that
chose it, then the overrides in precedence order.  Every line is a TOML
comment, so ``config check`` output stays a loadable configuration.

SECURITY: reads the compiled policy only.
"""

from __future__ import annotations

from mailwarden.config.schema import CATEGORIES
from mailwarden.message import Direction, Envelope, Message
from mailwarden.policy.decide import Mode, decide
from mailwarden.policy.rules import Policy
from mailwarden.verdict import Category, Finding, Status, Verdict

_SAMPLES = {
    "infected": Verdict(Status.INFECTED, (Finding("NAME", "", "sample", Category.INFECTED),)),
    "suspicious": Verdict(Status.SUSPICIOUS, (Finding("NAME", "", "sample", Category.SUSPICIOUS),)),
    "unscanned": Verdict(Status.UNSCANNED, reason="REASON"),
    "error": Verdict(Status.ERROR, reason="REASON"),
}


def describe(policy: Policy) -> str:
    """Lines such as ``# inbound   infected    reject (554 5.7.1 ...)   quarantine``."""
    out = [
        "# effective policy (docs/policy.md); clean mail is always accepted",
        f"# {'direction':<10}{'category':<12}{'before the queue (proxy, milter)':<52}"
        "after the queue (filter, LMTP, MDA)",
    ]
    for direction in (Direction.INBOUND, Direction.OUTBOUND, Direction.UNKNOWN):
        for category in CATEGORIES:
            message = Message(b"", Envelope(direction=direction))
            cells = []
            for mode in (Mode.BEFORE_QUEUE, Mode.AFTER_QUEUE):
                whole = decide(_SAMPLES[category], message, policy, mode=mode).whole
                extra = " +copy" if whole.keep_copy and whole.kind.value != "quarantine" else ""
                cells.append(f"{whole.kind.value}{extra} ({whole.reply})")
            out.append(f"# {direction.value:<10}{category:<12}{cells[0]:<52}{cells[1]}")
    out.append("# overrides (address before domain before .domain; recipient before sender):")
    if not policy.overrides:
        out.append("#   none")
    out.extend(f"#   {o.describe()}" for o in policy.overrides)
    return "\n".join(out) + "\n"
