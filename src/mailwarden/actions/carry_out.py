"""Carry out an action: quarantine, rewrite for delivery, record the event, log.

The single entry point agents call after ``policy.decide``::

    done = carry_out(message, verdict, action, store=store, host=hostname,
                     timings={"total": elapsed})
    done.deliveries        # ((rewritten bytes, recipients), ...) for delivering outcomes
    done.quarantine_id     # set when a copy was kept
    done.action.whole.reply  # what to answer the MTA/client

Agents that answer once use ``action.whole``; those that answer per recipient
use ``action.outcomes`` and deliver each entry of ``deliveries`` to its
recipients.

Failures: a quarantine copy that cannot be stored raises (the agent's
pipeline turns it into a temporary failure, so the MTA keeps the mail); a
history row that cannot be written is logged and skipped.

SECURITY: the only writer of the quarantine besides release; the message is
stored byte for byte as received (before any header change) under an id the
store generates.  Timing values come from the caller (this module reads the
clock only to time-stamp the history event).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

from mailwarden.actions.headers import apply_action
from mailwarden.actions.log import log_line, log_message, log_record
from mailwarden.message import Message
from mailwarden.policy import Action, Outcome
from mailwarden.store import QuarantineId, QuarantineStore, ScanEvent, StoreError
from mailwarden.verdict import Verdict

_log = logging.getLogger("mailwarden.actions")


@dataclass(frozen=True, slots=True)
class Done:
    action: Action
    deliveries: tuple[tuple[bytes, tuple[str, ...]], ...]
    quarantine_id: QuarantineId | None
    log_line: str


def carry_out(
    message: Message,
    verdict: Verdict,
    action: Action,
    *,
    store: QuarantineStore | None,
    host: str,
    timings: dict[str, float] | None = None,
    emit_log: bool = True,
) -> Done:
    """Do what ``action`` says; see the module documentation."""
    qid: QuarantineId | None = None
    if action.keep_copy:
        if store is None:
            raise ValueError("the action keeps a copy but no store was given")
        qid = store.put(message.raw, message.envelope, verdict, action.whole.rule)
    deliveries: list[tuple[bytes, tuple[str, ...]]] = []
    for outcome, rcpts in _delivering(action):
        deliveries.append((apply_action(message.raw, action, outcome, host=host), rcpts))
    if store is not None:
        event = ScanEvent(
            time=time.time(),
            envelope=dataclasses.replace(message.envelope, direction=action.direction),
            status=verdict.status.value,
            action=action.kind.value,
            finding=verdict.name,
            size=len(message.raw),
            quarantine_id=qid,
            timings={**verdict.timings, **(timings or {})},
        )
        try:
            store.record_event(event)
        except StoreError as exc:
            # the history is not worth deferring mail for, and a deferral after
            # the quarantine copy was stored would store it again on the retry;
            # the log line below still records the message
            _log.warning("history not recorded (queue id %s): %s", message.envelope.queue_id, exc)
    record = log_record(message, verdict, action, timings=timings, quarantine_id=qid)
    if emit_log:
        log_message(record)
    return Done(action, tuple(deliveries), qid, log_line(record))


def _delivering(action: Action) -> list[tuple[Outcome, tuple[str, ...]]]:
    if not action.outcomes:
        return [(action.whole, ())] if action.whole.delivers else []
    return [(o, r) for o, r in action.groups() if o.delivers]
