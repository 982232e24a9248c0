"""Prometheus metrics: what the agents count and the /metrics answer.

Public API::

    from mailwarden.metrics import record            # cheap: imported by the pipeline
    record.arm(enabled=True, directory="/run/mailwarden/metrics")
    record.scanned(envelope, status="clean", action="accept", seconds=0.004)

    from mailwarden.metrics.exposition import Exporter   # pulls in prometheus-client
    body, content_type = Exporter.from_config(config).render()

    from mailwarden.metrics.daemon import daemon_status  # the daemon's STATS, parsed

This module imports nothing itself, so the per-message commands (``mda``)
pay nothing for it; docs/metrics.md lists every metric.

SECURITY: see ``record`` (files it writes) and ``exposition`` (what a
scrape shows).
"""
