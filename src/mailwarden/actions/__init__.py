"""Actions: the only layer that changes a message or writes the quarantine.

Public API::

    done = carry_out(message, verdict, action, store=store, host=hostname)
    rewrite(raw, add=[...], strip=[...], subject_tag="***VIRUS***")   # bytes in, bytes out
    apply_action(raw, action, outcome, host=hostname)
    log_line(log_record(message, verdict, action, timings=..., quarantine_id=...))
    secret = load_secret(path, create=True)
    mark = check_mark(raw, secret, now=..., max_age=...)              # before decide()
    await release(store, qid, secret=secret, host=..., port=...)

SECURITY: see each module: ``headers`` (byte-preserving, injection-proof
edits), ``release`` (HMAC release mark, secret file 0600), ``carry_out``
(quarantine writes), ``log`` (escaped JSON lines).
"""

from mailwarden.actions.carry_out import Done, carry_out
from mailwarden.actions.headers import RELEASE_HEADER, apply_action, rewrite, scanned_value
from mailwarden.actions.log import log_line, log_message, log_record
from mailwarden.actions.release import (
    ReleaseError,
    ReleaseMark,
    ReleaseResult,
    add_mark,
    check_mark,
    load_secret,
    release,
    release_options,
)

__all__ = [
    "RELEASE_HEADER",
    "Done",
    "ReleaseError",
    "ReleaseMark",
    "ReleaseResult",
    "add_mark",
    "apply_action",
    "carry_out",
    "check_mark",
    "load_secret",
    "log_line",
    "log_message",
    "log_record",
    "release",
    "release_options",
    "rewrite",
    "scanned_value",
]
