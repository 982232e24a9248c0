"""The daemon's figures, read from its STATS reply, for /metrics and the status page.

Usage::

    status = daemon_status(socket_path, timeout=2.0)   # DaemonStatus; .up False when down
    status.signatures, status.queue_depth, status.worker_deaths

STATS keeps clamd's layout and appends mailwarden's own lines
(``daemon/stats.py``); :func:`parse_stats` reads both and ignores what it
does not know, so an older or newer daemon still gives what it has.

SECURITY: talks to the daemon's socket only (read access to it is enough);
the reply is bounded by the client and parsed as numbers and short words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mailwarden.daemon.client import DaemonClient, DaemonError


@dataclass(frozen=True, slots=True)
class DaemonStatus:
    up: bool
    error: str = ""
    version: str = ""
    daemon_version: str = ""
    db_version: str = ""
    signatures: int = 0
    generation: int = 0
    loaded: str = ""
    uptime: float = 0.0
    threads_live: int = 0
    threads_idle: int = 0
    threads_max: int = 0
    queue_depth: int = 0
    queue_limit: int = 0
    queue_rejected: int = 0
    worker_timeouts: int = 0
    worker_deaths: int = 0
    connections: int = 0
    reloads: int = 0
    last_reload: str = ""
    scans: dict[str, int] = field(default_factory=dict)


_PAIRS = re.compile(r"(\S+)\s+(\S+)")


def _pairs(text: str) -> dict[str, str]:
    return {k: v for k, v in _PAIRS.findall(text)}


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def parse_stats(text: str, *, version: str = "") -> DaemonStatus:
    """A :class:`DaemonStatus` from the text of a STATS reply."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(": ")
        if sep and not line.startswith("\t"):
            fields[key.strip()] = rest.strip()
    threads = _pairs(fields.get("THREADS", ""))
    database = fields.get("DATABASE", "")
    db = _pairs(database.split(" loaded ", 1)[0])
    queue = _pairs("depth " + fields.get("QUEUE-LIMIT", ""))
    workers = _pairs(fields.get("WORKERS", ""))
    scans_line = fields.get("SCANS", "")
    total, _, rest = scans_line.partition(" ")
    scans = {k: _int(v) for k, v in _pairs(rest).items()}
    if scans_line:
        scans["total"] = _int(total)
    reloads, _, last = fields.get("RELOADS", "").partition(" last ")
    queued = re.match(r"(\d+)", fields.get("QUEUE", ""))
    return DaemonStatus(
        up=True,
        version=version,
        daemon_version=fields.get("MAILWARDEN", ""),
        db_version="" if db.get("version") == "-" else db.get("version", ""),
        signatures=_int(db.get("signatures")),
        generation=_int(db.get("generation")),
        loaded=database.split(" loaded ", 1)[1] if " loaded " in database else "",
        uptime=float(_int(fields.get("UPTIME"))),
        threads_live=_int(threads.get("live")),
        threads_idle=_int(threads.get("idle")),
        threads_max=_int(threads.get("max")),
        queue_depth=_int(queued.group(1)) if queued else 0,
        queue_limit=_int(fields.get("QUEUE-LIMIT", "").split(" ", 1)[0]),
        queue_rejected=_int(queue.get("rejected")),
        worker_timeouts=_int(workers.get("timeouts")),
        worker_deaths=_int(workers.get("deaths")),
        connections=_int(fields.get("CONNECTIONS")),
        reloads=_int(reloads),
        last_reload=last,
        scans=scans,
    )


def daemon_status(socket_path: str, *, timeout: float = 2.0) -> DaemonStatus:
    """Ask the daemon for VERSION and STATS; a daemon that does not answer is ``up=False``."""
    client = DaemonClient(socket_path, timeout=timeout, connect_timeout=timeout, reuse=False)
    try:
        version = client.version()
        return parse_stats(client.stats(), version=version)
    except (DaemonError, OSError) as exc:
        return DaemonStatus(up=False, error=str(exc))
    finally:
        client.close()
