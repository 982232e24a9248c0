"""``mailwarden qmail-queue``: scanning in front of qmail's queue (S1 for qmail).

Public API::

    from mailwarden.intercept.qmail import QueueRequest, run_qmail_queue
    code = run_qmail_queue(QueueRequest(qmail_queue="/var/qmail/bin/qmail-queue.orig"))

Modules: ``envelope`` (qmail-queue(8)'s envelope on descriptor 1),
``settings`` (the ``[qmail]`` section and qmail-queue's exit codes),
``agent`` (read, scan once, exec the real qmail-queue or exit with a code).

Deliberately light, like the MDA: the client starts a fresh process for
every message, so importing this package never loads the engine or the
SMTP agents.

SECURITY: see each module.  Nothing exits 0 unless the real qmail-queue
queued the message or the policy quarantined or discarded it; every failure
is one of qmail-queue's temporary codes, so the client keeps the mail.
"""

from mailwarden.intercept.qmail.agent import QueueRequest, run_qmail_queue
from mailwarden.intercept.qmail.envelope import (
    EnvelopeError,
    QmailEnvelope,
    encode_envelope,
    parse_envelope,
    read_envelope,
)
from mailwarden.intercept.qmail.settings import QmailSettings

__all__ = [
    "EnvelopeError",
    "QmailEnvelope",
    "QmailSettings",
    "QueueRequest",
    "encode_envelope",
    "parse_envelope",
    "read_envelope",
    "run_qmail_queue",
]
