"""Settings of ``mailwarden qmail-queue`` (the ``[qmail]`` section plus flags) and its exit codes.

::

    settings = QmailSettings.from_config(config, qmail_queue="/var/qmail/bin/qmail-queue.orig")
    settings.qmail_queue        # the real qmail-queue, run with the message when it passes

The exit codes are qmail-queue(8)'s own and are not configurable: qmail-smtpd,
qmail-inject and every other client read them as that manual page says
(11 to 40 permanent, anything else temporary; 0 queued).

SECURITY: configuration is trusted; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailwarden.config import Config
from mailwarden.errors import ConfigError

#: queued (or quarantined or discarded by the policy: its fate is settled)
QQ_OK = 0
#: "mail server permanently refuses to send the message to any recipients"
QQ_REFUSED = 31
#: "unable to read the message or envelope information"
QQ_READ_ERROR = 54
#: "mail server temporarily refuses to send the message to any recipients"
QQ_TEMPORARY = 71
#: "internal bug"
QQ_BUG = 81
#: "envelope format error"
QQ_ENVELOPE = 91

#: set in the real qmail-queue's environment: seeing it again means a loop
LOOP_GUARD = "MAILWARDEN_QMAIL_QUEUE"


@dataclass(frozen=True, slots=True)
class QmailSettings:
    qmail_queue: str
    daemon_socket: str
    spool_threshold: int
    connect_timeout: float
    scan_timeout: float

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        qmail_queue: str | None = None,
        daemon_socket: str | None = None,
    ) -> QmailSettings:
        values = config["qmail"]
        sock = daemon_socket or values["daemon_socket"] or config["daemon"]["socket"]
        if not sock:
            raise ConfigError(
                "qmail-queue needs the daemon's unix socket",
                key="--daemon-socket / qmail.daemon_socket / daemon.socket",
            )
        return cls(
            qmail_queue=str(qmail_queue or values["qmail_queue"]),
            daemon_socket=str(sock),
            spool_threshold=int(values["spool_threshold"]),
            connect_timeout=float(values["connect_timeout"]),
            scan_timeout=float(values["scan_timeout"]),
        )
