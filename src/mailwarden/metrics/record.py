"""What the agents count: one call per message from the shared pipeline.

Usage (``intercept/pipeline.py`` does both)::

    record.arm(enabled=True, directory="/run/mailwarden/metrics")   # Pipeline.from_config
    record.scanned(envelope, status="infected", action="quarantine", seconds=0.012)

Nothing is imported or written until the first message: a process that
never scans pays for nothing, and one that was started once per message
(``mailwarden mda``, ``qmail-queue``: the command line calls
:func:`one_shot`) never records at all, because prometheus-client's
multiprocess mode keeps one file per process id and a file per delivery
would pile up.  Long-running agents write their counters to files named
after their pid in the configured directory; the exporter
(``metrics.exposition``) adds every file up at scrape time.

Recording never fails a message: a directory that cannot be created or
written turns recording off for the process with one warning.

SECURITY: writes only small counter files, 0600 in a 0700 directory that
is created here only when its parent exists (nothing else is created).  The
labels are the interception point, agent, direction, status and action:
fixed vocabularies from our own enums, never text from the message.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from mailwarden.message import Envelope

log = logging.getLogger("mailwarden.metrics")

#: Scan latency buckets in seconds: a clean text message takes milliseconds,
#: a large archive seconds, the agents' scan timeout is two minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

MESSAGES = "mailwarden_messages"
SCAN_SECONDS = "mailwarden_scan_duration_seconds"


class _State:
    directory: str | None = None
    one_shot = False
    recorder: _Recorder | None = None
    failed = False


_state = _State()


def one_shot() -> None:
    """This process handles one message and exits: never record in it."""
    _state.one_shot = True


def arm(*, enabled: bool, directory: str) -> None:
    """Record into ``directory`` from the first message on (or stop, when not ``enabled``)."""
    _state.directory = directory if enabled and directory else None


def scanned(envelope: Envelope, *, status: str, action: str, seconds: float) -> None:
    """Count one message and its scan time; never raises."""
    if _state.directory is None or _state.one_shot or _state.failed:
        return
    try:
        if _state.recorder is not None:
            _state.recorder.add(envelope, status, action, seconds)
            return
        recorder = _start(_state.directory)
        # the per-pid files are opened by the first add: make them 0600
        old = os.umask(0o077)
        try:
            recorder.add(envelope, status, action, seconds)
        finally:
            os.umask(old)
    except Exception as exc:  # a full or read-only disk must not cost a message
        _state.failed = True
        log.warning("metrics are not recorded by this process (%s): %s", _state.directory, exc)


class _Recorder:
    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.messages: Any = Counter(
            MESSAGES,
            "Messages through the agents by interception point, agent, direction, "
            "verdict status and action.",
            ("point", "agent", "direction", "status", "action"),
            registry=None,
        )
        self.latency: Any = Histogram(
            SCAN_SECONDS,
            "Seconds from a message's arrival in the pipeline to its verdict, by agent.",
            ("agent",),
            buckets=LATENCY_BUCKETS,
            registry=None,
        )

    def add(self, envelope: Envelope, status: str, action: str, seconds: float) -> None:
        agent = envelope.agent or "-"
        self.messages.labels(
            envelope.point.value, agent, envelope.direction.value, status, action
        ).inc()
        self.latency.labels(agent).observe(seconds)


def _start(directory: str) -> _Recorder:
    path = Path(directory)
    if not path.is_dir():
        # the parent (/run/mailwarden) belongs to serve or systemd: only our own
        # leaf is made, and tight, since the counters describe the mail flow
        path.mkdir(mode=0o700)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    from prometheus_client import values

    # every prometheus-client value of this process now lives in a file of
    # its own pid there, as PROMETHEUS_MULTIPROC_DIR set at start-up would do
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    _state.recorder = _Recorder()
    return _state.recorder
