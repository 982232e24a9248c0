"""``mailwarden qmail-queue``: a drop-in qmail-queue that scans before the real one queues.

::

    code = run_qmail_queue(QueueRequest(qmail_queue="/var/qmail/bin/qmail-queue.orig"))

The client (qmail-smtpd, qmail-inject, ...) runs this instead of
qmail-queue, through ``QMAILQUEUE`` (netqmail, notqmail) or because the
original was renamed.  As qmail-queue(8) specifies, the message is read
from descriptor 0 to its end, then the envelope from descriptor 1
(:mod:`.envelope`).  The shared pipeline runs once, before the client's
reply (the SMTP client is still waiting), so the policy's reject applies:

===================  ============================================================
outcome              what happens
===================  ============================================================
accept, tag          this process becomes the real qmail-queue (``execv``) with
                     the (tagged) message on descriptor 0 and the envelope, byte
                     for byte, on descriptor 1: its exit status is the answer
quarantine, discard  0: the message's fate is settled, nothing is queued
reject               31 (permanent refusal; qmail-smtpd answers 554)
defer, error         71 (temporary refusal; qmail-smtpd answers 451)
===================  ============================================================

Every failure exits with a temporary qmail-queue code and queues nothing:
91 for a malformed or truncated envelope (descriptor 1 closed early), 54
when the message cannot be read, 55 for an unusable configuration, 81 for
a real qmail-queue that cannot be run, a loop back into this program, or
any internal error.  The client keeps the message and tries again.

SECURITY: runs as the client's user (qmaild for qmail-smtpd; any local user
for qmail-inject), which must reach the daemon's socket and write the
quarantine store.  The message and envelope are untrusted and never reach
a command line; the real qmail-queue's path comes from the configuration
or the command line.  It inherits only descriptors 0, 1 and 2.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from mailwarden.config import Config, load_config
from mailwarden.errors import MailwardenError
from mailwarden.intercept.mda.handoff import HandoffError, exec_mda, find_program
from mailwarden.intercept.mda.judge import judge
from mailwarden.intercept.pipeline import Scanner
from mailwarden.intercept.qmail.envelope import EnvelopeError, QmailEnvelope, read_envelope
from mailwarden.intercept.qmail.settings import (
    LOOP_GUARD,
    QQ_BUG,
    QQ_ENVELOPE,
    QQ_OK,
    QQ_READ_ERROR,
    QQ_REFUSED,
    QQ_TEMPORARY,
    QmailSettings,
)
from mailwarden.intercept.spool import MessageSpool
from mailwarden.message import Envelope, Message, Point
from mailwarden.policy import DELIVERING, ActionKind, Mode

log = logging.getLogger("mailwarden.intercept.qmail")

#: qmail-queue(8): "unable to read a configuration file"
QQ_CONFIG = 55
_PIECE = 64 * 1024


@dataclass(frozen=True, slots=True)
class QueueRequest:
    """What the command line says."""

    config: str | None = None
    daemon_socket: str | None = None
    qmail_queue: str | None = None


class _Stop(Exception):
    def __init__(self, code: int, why: str) -> None:
        super().__init__(why)
        self.code = code


def run_qmail_queue(
    request: QueueRequest,
    *,
    message_fd: int = 0,
    envelope_fd: int = 1,
    scanner: Scanner | None = None,
) -> int:
    """Scan, then queue through the real qmail-queue or exit with its code; see module docs."""
    try:
        if os.environ.get(LOOP_GUARD):
            raise _Stop(QQ_BUG, "the real qmail-queue is this program again: refusing to loop")
        config, settings = _configure(request)
        try:
            program = find_program(settings.qmail_queue)
        except HandoffError as exc:
            raise _Stop(QQ_BUG, f"real qmail-queue: {exc}") from exc
        raw = _read_message(message_fd, settings.spool_threshold)
        try:
            envelope = read_envelope(envelope_fd)
        except EnvelopeError as exc:
            raise _Stop(QQ_ENVELOPE, str(exc)) from exc
        kind, data = _decide(raw, envelope, settings, config, scanner)
        if kind in DELIVERING and data is not None:
            _queue(program, data, envelope, envelope_fd)
        if kind in (ActionKind.QUARANTINE, ActionKind.DISCARD):
            return QQ_OK
        return QQ_REFUSED if kind is ActionKind.REJECT else QQ_TEMPORARY
    except _Stop as stop:
        log.error("qmail-queue exits %d: %s", stop.code, stop)
        return stop.code
    except Exception:  # the boundary: whatever went wrong, the client keeps the mail
        log.exception("internal error, nothing queued; the client keeps the mail")
        return QQ_BUG


def _configure(request: QueueRequest) -> tuple[Config, QmailSettings]:
    try:
        config = load_config(request.config)
        settings = QmailSettings.from_config(
            config, qmail_queue=request.qmail_queue, daemon_socket=request.daemon_socket
        )
    except MailwardenError as exc:
        raise _Stop(QQ_CONFIG, f"configuration: {exc}") from exc
    return config, settings


def _read_message(fd: int, threshold: int) -> bytes:
    spool = MessageSpool(threshold)
    try:
        while piece := os.read(fd, _PIECE):
            spool.write(piece)
        return spool.getvalue()
    except OSError as exc:
        raise _Stop(QQ_READ_ERROR, f"cannot read the message: {exc.strerror or exc}") from exc
    finally:
        spool.close()


def _decide(
    raw: bytes,
    qmail: QmailEnvelope,
    settings: QmailSettings,
    config: Config,
    scanner: Scanner | None,
) -> tuple[ActionKind, bytes | None]:
    envelope = Envelope(
        sender=qmail.sender,
        recipients=qmail.recipients,
        # set by tcpserver for qmail-smtpd; absent for local submissions
        client_address=os.environ.get("TCPREMOTEIP") or None,
        client_name=os.environ.get("TCPREMOTEHOST") or None,
        point=Point.MTA,
        agent="qmail-queue",
    )
    # the client has not answered yet: a reject reaches the sender as 554
    decision = judge(
        Message(raw, envelope), settings, config, scanner=scanner, mode=Mode.BEFORE_QUEUE
    )
    return decision.kind, decision.data


def _queue(program: str, data: bytes, envelope: QmailEnvelope, envelope_fd: int) -> None:
    """Become the real qmail-queue; returns only by raising :class:`_Stop`."""
    try:
        fd = os.memfd_create("mailwarden-qmail-envelope", 0)
        try:
            os.write(fd, envelope.raw)  # far below a memfd's limits; one write suffices
            os.lseek(fd, 0, os.SEEK_SET)
            os.dup2(fd, envelope_fd)
        finally:
            os.close(fd)
        os.environ[LOOP_GUARD] = "1"
        exec_mda(program, [program], [data], threshold=len(data) + 1)
    except (OSError, HandoffError) as exc:
        raise _Stop(QQ_BUG, f"cannot run the real qmail-queue {program}: {exc}") from exc
