"""Where ``mda`` and ``pipe`` write their logs, and the one line the MTA reads.

::

    route_logs("mailwarden-mda")            # per-message record and warnings -> syslog (mail)
    say(75, "4.7.1", "Scanning temporarily unavailable", codes)   # stderr, one line

Standard output and error belong to the MTA (Postfix puts them into the
bounce and reads an enhanced status code at their start) or, for ``pipe``,
carry the message.  So the per-message JSON record and every warning go to
syslog's ``mail`` facility, next to the MTA's own log, and the only thing
written to standard error is :func:`say`'s line when the message is not
handed on.

SECURITY: the line's text comes from the policy's reply (names cleaned by
``safe_text``) or from our own messages; its status class always matches
the exit code, so a retry can never be read as a bounce.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import syslog

import structlog

#: sysexits codes every MTA treats as "try again later"
_TEMPORARY = frozenset({os.EX_TEMPFAIL, os.EX_OSERR})


def route_logs(ident: str) -> None:
    """Send the per-message record and the ``mailwarden`` loggers to syslog."""
    syslog.openlog(ident, syslog.LOG_PID, syslog.LOG_MAIL)
    logger = logging.getLogger("mailwarden")
    logger.handlers[:] = [_SyslogHandler()]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    structlog.configure(
        processors=[structlog.processors.JSONRenderer(sort_keys=True)],
        logger_factory=_SyslogLogger,
        cache_logger_on_first_use=True,
    )


def say(code: int, status: str, text: str, *, temporary: int) -> None:
    """One line on stderr: ``4.7.1 text`` or ``5.7.1 text``, the class following ``code``."""
    print(reason_line(code, status, text, temporary=temporary), file=sys.stderr, flush=True)


def reason_line(code: int, status: str, text: str, *, temporary: int) -> str:
    """The line :func:`say` writes (the mda agent sends it to the client instead)."""
    klass = "4" if code in _TEMPORARY or code == temporary else "5"
    parts = status.split(".")
    enhanced = ".".join([klass, *parts[1:]]) if len(parts) == 3 else f"{klass}.0.0"
    return f"{enhanced} {' '.join(text.split())}"


_PRIORITY = {
    logging.DEBUG: syslog.LOG_DEBUG,
    logging.INFO: syslog.LOG_INFO,
    logging.WARNING: syslog.LOG_WARNING,
    logging.ERROR: syslog.LOG_ERR,
    logging.CRITICAL: syslog.LOG_CRIT,
}


class _SyslogHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        # a log line that cannot be written must neither stop a delivery nor
        # reach stderr (logging's own error report would)
        with contextlib.suppress(Exception):
            syslog.syslog(_PRIORITY.get(record.levelno, syslog.LOG_INFO), self.format(record))


class _SyslogLogger:
    """The structlog logger: each rendered event is one syslog line."""

    def __init__(self, *_args: object) -> None:
        pass

    def msg(self, message: str) -> None:
        syslog.syslog(syslog.LOG_INFO, message)

    info = debug = msg

    def warning(self, message: str) -> None:
        syslog.syslog(syslog.LOG_WARNING, message)

    def error(self, message: str) -> None:
        syslog.syslog(syslog.LOG_ERR, message)

    critical = exception = error
