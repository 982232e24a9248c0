"""The exposition text: the daemon's figures as metrics, and a scrape without agents or daemon."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from mailwarden.config import defaults
from mailwarden.metrics.daemon import DaemonStatus
from mailwarden.metrics.exposition import Exporter, daemon_metrics


def _flat(families: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in families:  # type: ignore[attr-defined]
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_daemon_figures_become_metrics() -> None:
    status = DaemonStatus(
        up=True,
        db_version="daily:27400,main:62,local.ndb",
        signatures=99,
        threads_live=4,
        threads_idle=1,
        queue_depth=3,
        worker_deaths=2,
        scans={"total": 10, "infected": 2, "errors": 1},
    )
    got = _flat(daemon_metrics(status))
    assert got[("mailwarden_daemon_up", ())] == 1
    assert got[("mailwarden_database_signatures", ())] == 99
    assert got[("mailwarden_database_version", (("database", "daily"),))] == 27400
    assert got[("mailwarden_database_version", (("database", "main"),))] == 62
    assert got[("mailwarden_database_info", (("version", status.db_version),))] == 1
    assert got[("mailwarden_daemon_workers", (("state", "busy"),))] == 3
    assert got[("mailwarden_daemon_queue_depth", ())] == 3
    assert got[("mailwarden_daemon_worker_restarts_total", ())] == 2
    assert got[("mailwarden_daemon_scans_total", (("outcome", "clean"),))] == 7


def test_a_scrape_with_nothing_running_still_answers(tmp_path: Path) -> None:
    config = defaults()
    config["metrics"]["directory"] = str(tmp_path / "absent")
    config["daemon"]["socket"] = str(tmp_path / "none.sock")
    config["metrics"]["daemon_timeout"] = 0.5
    body, content_type = Exporter.from_config(config).render()
    assert content_type.startswith("text/plain; version=")
    got = _flat(text_string_to_metric_families(body.decode()))
    assert got[("mailwarden_daemon_up", ())] == 0
    assert not any(name.startswith("mailwarden_messages") for name, _ in got)


def test_disabled_metrics_read_no_folder() -> None:
    config = defaults()
    config["metrics"]["enabled"] = False
    assert Exporter.from_config(config).directory == ""
