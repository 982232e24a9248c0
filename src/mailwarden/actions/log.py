"""The JSON log line written for every message: who, what was found, what was done.

One line per message, the same fields from every agent, for log shippers and
``jq``::

    record = log_record(message, verdict, action, timings={"scan": 0.012}, quarantine_id=qid)
    line = log_line(record)        # the JSON text
    log_message(record)            # through structlog, event "message"

SECURITY: the line holds envelope addresses and names from hostile mail.  JSON
encoding escapes control characters, so one message cannot forge another log
line; finding parts go through ``display_name``.  No message content is
logged.
"""

from __future__ import annotations

import json
from typing import Any

import structlog

from mailwarden.message import Message
from mailwarden.policy import Action
from mailwarden.verdict import Verdict, display_name

_LOGGER = "mailwarden.message"


def log_record(
    message: Message,
    verdict: Verdict,
    action: Action,
    *,
    timings: dict[str, float] | None = None,
    quarantine_id: str | None = None,
) -> dict[str, Any]:
    """The fields of the log line, as a JSON-ready dict."""
    env = message.envelope
    return {
        "queue_id": env.queue_id,
        "envelope": env.to_dict(),
        "size": len(message.raw),
        "verdict": {
            "status": verdict.status.value,
            "reason": verdict.reason,
            "findings": [
                {"name": f.name, "part": display_name(f.part), "engine": f.engine}
                for f in verdict.findings
            ],
        },
        "direction": action.direction.value,
        "action": action.kind.value,
        "reply": str(action.reply),
        "rule": action.whole.rule,
        "recipients": {r: o.kind.value for r, o in action.outcomes},
        "released": action.released,
        "quarantine_id": quarantine_id,
        "timings": {k: round(v, 6) for k, v in {**verdict.timings, **(timings or {})}.items()},
    }


def log_line(record: dict[str, Any]) -> str:
    """A :func:`log_record` as one JSON object on one line (no newline at the end)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def log_message(record: dict[str, Any]) -> None:
    """Emit a :func:`log_record` through structlog (event ``message``)."""
    structlog.get_logger(_LOGGER).info("message", **record)
