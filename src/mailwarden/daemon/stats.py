"""The daemon's figures and the STATS reply: clamd's layout, then mailwarden's own lines.

The server counts every finished scan here and renders STATS from a snapshot::

    counters = Counters()
    counters.add(verdict)
    text = render(Snapshot(...))      # "POOLS: 1\\n\\nSTATE: VALID PRIMARY\\n...END"

clamd's part (POOLS, STATE, THREADS, QUEUE with one tab-indented line per
running or waiting request, MEMSTATS) keeps its exact shape, so clamdtop and
monitoring scripts written for clamd read it; mailwarden's lines (database,
uptime, scans by outcome, queue rejections, the last reload and its reason)
come after MEMSTATS and before ``END``.

SECURITY: STATS shows request labels (paths a client asked to scan, never
mail content) to anyone allowed to connect, as clamd does.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from mailwarden.daemon.protocol import clean_name
from mailwarden.verdict import Status, Verdict


@dataclass
class Counters:
    scans: int = 0
    infected: int = 0
    suspicious: int = 0
    unscanned: int = 0
    errors: int = 0
    findings: int = 0
    bytes: int = 0
    started_at: float = field(default_factory=time.monotonic)

    def add(self, verdict: Verdict) -> None:
        self.scans += 1
        self.bytes += verdict.size
        self.findings += len(verdict.findings)
        if verdict.status is Status.INFECTED:
            self.infected += 1
        elif verdict.status is Status.SUSPICIOUS:
            self.suspicious += 1
        elif verdict.status is Status.UNSCANNED:
            self.unscanned += 1
        elif verdict.status is Status.ERROR:
            self.errors += 1

    def add_error(self) -> None:
        self.scans += 1
        self.errors += 1


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything STATS shows, gathered by the server at the time of the command."""

    live: int
    idle: int
    max_workers: int
    idle_timeout: float
    queued: int
    queue_limit: int
    active: list[tuple[str, float]]
    pids: list[int]
    db_version: str
    signatures: int
    generation: int
    loaded_at: float
    counters: Counters
    rejected: int
    timeouts: int
    worker_deaths: int
    connections: int
    reloads: int
    last_reload: str
    daemon_version: str


def render(snap: Snapshot) -> str:
    c = snap.counters
    rss = sum(rss_bytes(pid) for pid in snap.pids) / (1024 * 1024)
    lines = [
        "POOLS: 1",
        "",
        "STATE: VALID PRIMARY",
        f"THREADS: live {snap.live}  idle {snap.idle} max {snap.max_workers} "
        f"idle-timeout {snap.idle_timeout:g}",
        f"QUEUE: {snap.queued} items",
        "\tSTATS 0.000000 ",
    ]
    lines.extend(f"\t{clean_name(label)} {seconds:.6f} " for label, seconds in snap.active)
    lines += [
        "",
        "MEMSTATS: heap N/A mmap N/A used N/A free N/A releasable N/A pools 1 "
        f"pools_used {rss:.3f}M pools_total {rss:.3f}M",
        f"MAILWARDEN: {snap.daemon_version}",
        f"DATABASE: version {snap.db_version or '-'} signatures {snap.signatures} "
        f"generation {snap.generation} loaded {time.ctime(snap.loaded_at)}",
        f"UPTIME: {time.monotonic() - c.started_at:.0f}",
        f"SCANS: {c.scans} infected {c.infected} suspicious {c.suspicious} "
        f"unscanned {c.unscanned} errors {c.errors} findings {c.findings} bytes {c.bytes}",
        f"QUEUE-LIMIT: {snap.queue_limit} depth {snap.queued} rejected {snap.rejected}",
        f"WORKERS: timeouts {snap.timeouts} deaths {snap.worker_deaths}",
        f"CONNECTIONS: {snap.connections}",
        f"RELOADS: {snap.reloads} last {clean_name(snap.last_reload)}",
        "END",
    ]
    return "\n".join(lines)


def rss_bytes(pid: int) -> int:
    """Resident set size of one process, 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as fh:
            resident = int(fh.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return resident * os.sysconf("SC_PAGE_SIZE")
