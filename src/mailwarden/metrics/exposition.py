"""The /metrics answer: the agents' counters added up, plus the daemon's figures.

Usage::

    exporter = Exporter.from_config(config)
    body, content_type = exporter.render()     # Prometheus text format

The web interface serves it at ``/metrics``; ``mailwarden metrics`` serves
only that, for when the web interface does not run.  Each scrape reads the
agents' files in ``[metrics] directory`` (prometheus-client's
``MultiProcessCollector``) and asks the daemon for STATS over its socket,
so the figures are those of the moment, and a daemon that does not answer
shows as ``mailwarden_daemon_up 0`` instead of failing the scrape.
docs/metrics.md lists every metric.

SECURITY: reads the metrics folder and talks to the daemon's socket; needs
neither the store nor any secret.  It exposes counts and the signature
version only, no addresses or subjects.  Who may scrape is decided by where
it listens (loopback by default) or by the web interface's login.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from mailwarden import __version__
from mailwarden.config import Config
from mailwarden.metrics.daemon import DaemonStatus, daemon_status

_OUTCOMES = ("infected", "suspicious", "unscanned", "errors")


class DaemonCollector(Collector):
    """Asks the daemon at every scrape."""

    def __init__(self, socket_path: str, timeout: float) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def collect(self) -> Iterator[Metric]:
        return iter(daemon_metrics(daemon_status(self.socket_path, timeout=self.timeout)))


def daemon_metrics(s: DaemonStatus) -> list[Metric]:
    up = GaugeMetricFamily(
        "mailwarden_daemon_up", "1 when the daemon answered VERSION and STATS, else 0."
    )
    up.add_metric([], 1.0 if s.up else 0.0)
    build = GaugeMetricFamily(
        "mailwarden_build_info", "Version of the exporting mailwarden.", labels=["version"]
    )
    build.add_metric([__version__], 1.0)
    if not s.up:
        return [up, build]

    def gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
        metric = GaugeMetricFamily(name, text)
        metric.add_metric([], value)
        return metric

    def counter(name: str, text: str, value: float) -> CounterMetricFamily:
        metric = CounterMetricFamily(name, text)
        metric.add_metric([], value)
        return metric

    info = GaugeMetricFamily(
        "mailwarden_database_info",
        "The loaded signature database: its version text (database:version pairs of the "
        "ClamAV containers, empty for loose files).",
        labels=["version"],
    )
    info.add_metric([s.db_version], 1.0)
    versions = GaugeMetricFamily(
        "mailwarden_database_version",
        "Version of each loaded ClamAV container (daily, main, bytecode...).",
        labels=["database"],
    )
    for part in s.db_version.split(","):
        name, _, number = part.rpartition(":")
        if name and number.isdigit():
            versions.add_metric([name], float(number))
    workers = GaugeMetricFamily(
        "mailwarden_daemon_workers", "Scan worker processes by state.", labels=["state"]
    )
    workers.add_metric(["busy"], float(max(s.threads_live - s.threads_idle, 0)))
    workers.add_metric(["idle"], float(s.threads_idle))
    scans = CounterMetricFamily(
        "mailwarden_daemon_scans",
        "Scans the daemon finished since it started, by outcome (clean, infected, "
        "suspicious, unscanned, errors).",
        labels=["outcome"],
    )
    total = s.scans.get("total", 0)
    scans.add_metric(["clean"], float(max(total - sum(s.scans.get(o, 0) for o in _OUTCOMES), 0)))
    for outcome in _OUTCOMES:
        scans.add_metric([outcome], float(s.scans.get(outcome, 0)))
    return [
        up,
        build,
        info,
        versions,
        gauge("mailwarden_database_signatures", "Signatures in the loaded database.", s.signatures),
        gauge(
            "mailwarden_database_generation",
            "Generation of the loaded database (1 at start, +1 per reload).",
            s.generation,
        ),
        workers,
        gauge("mailwarden_daemon_workers_max", "Configured number of workers.", s.threads_max),
        gauge(
            "mailwarden_daemon_queue_depth", "Scan requests waiting for a worker.", s.queue_depth
        ),
        gauge(
            "mailwarden_daemon_queue_limit",
            "Waiting requests past which the daemon refuses new ones.",
            s.queue_limit,
        ),
        counter(
            "mailwarden_daemon_queue_rejected",
            "Requests refused because the queue was full.",
            s.queue_rejected,
        ),
        counter(
            "mailwarden_daemon_worker_restarts",
            "Workers that died (crash, memory limit, killed after a timeout) and were replaced.",
            s.worker_deaths,
        ),
        counter(
            "mailwarden_daemon_worker_timeouts",
            "Scans stopped by the daemon's scan timeout.",
            s.worker_timeouts,
        ),
        scans,
        counter("mailwarden_daemon_reloads", "Database reloads since start.", s.reloads),
        gauge("mailwarden_daemon_connections", "Open client connections.", s.connections),
        gauge("mailwarden_daemon_uptime_seconds", "Seconds since the daemon started.", s.uptime),
    ]


@dataclass
class Exporter:
    directory: str
    daemon_socket: str
    timeout: float

    @classmethod
    def from_config(cls, config: Config, *, daemon_socket: str = "") -> Exporter:
        section = config["metrics"]
        return cls(
            directory=section["directory"] if section["enabled"] else "",
            daemon_socket=daemon_socket or config["daemon"]["socket"],
            timeout=float(section["daemon_timeout"]),
        )

    def registry(self) -> CollectorRegistry:
        registry = CollectorRegistry(auto_describe=False)
        if self.directory and os.path.isdir(self.directory):
            MultiProcessCollector(registry, path=self.directory)  # type: ignore[no-untyped-call]
        registry.register(DaemonCollector(self.daemon_socket, self.timeout))
        return registry

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry()), CONTENT_TYPE_LATEST
