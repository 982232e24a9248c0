"""A message through a real agent moves the counters that /metrics reports, and the
daemon's figures come from its STATS."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from mailwarden.metrics.exposition import Exporter
from web.stack import eicar_message, gateway, message


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def _value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


def test_messages_through_smtp_filter_move_the_counters(tmp_path: Path) -> None:
    with gateway(tmp_path) as gw:
        exporter = Exporter(str(gw.metrics_dir), gw.stack.socket, 5.0)
        before = _samples(exporter.render()[0].decode())
        assert _value(before, "mailwarden_messages_total") == 0
        gw.send(message("hello", "a clean message"))
        gw.send(eicar_message())
        gw.send(message("again", "another clean message"))
        after = _samples(exporter.render()[0].decode())

        agent = {"agent": "smtp-filter", "point": "S1"}
        assert (
            _value(after, "mailwarden_messages_total", status="clean", action="accept", **agent)
            == 2
        )
        assert (
            _value(
                after, "mailwarden_messages_total", status="infected", action="quarantine", **agent
            )
            == 1
        )
        assert _value(after, "mailwarden_scan_duration_seconds_count", agent="smtp-filter") == 3
        assert _value(after, "mailwarden_scan_duration_seconds_sum", agent="smtp-filter") > 0

        # the daemon's own figures, read from STATS at scrape time
        assert _value(after, "mailwarden_daemon_up") == 1
        assert _value(after, "mailwarden_database_signatures") > 0
        assert _value(after, "mailwarden_daemon_scans_total", outcome="infected") == 1
        assert _value(after, "mailwarden_daemon_scans_total", outcome="clean") == 2
        assert _value(after, "mailwarden_daemon_queue_depth") == 0
        assert _value(after, "mailwarden_daemon_worker_restarts_total") == 0
        assert _value(after, "mailwarden_daemon_workers", state="idle") >= 0

        # the agent's files are private to the mailwarden user
        assert stat.S_IMODE(gw.metrics_dir.stat().st_mode) == 0o700
        files = list(gw.metrics_dir.iterdir())
        assert files
        assert all(stat.S_IMODE(f.stat().st_mode) & 0o077 == 0 for f in files)

        # the daemon gone: the scrape still answers, and says so
        gw.stack.stop_daemon()
        down = _samples(exporter.render()[0].decode())
        assert _value(down, "mailwarden_daemon_up") == 0
        assert _value(down, "mailwarden_messages_total") == 3


def test_a_one_shot_command_records_nothing(tmp_path: Path) -> None:
    # `mailwarden mda` runs once per delivery: one file per process would pile up
    import subprocess
    import sys

    metrics_dir = tmp_path / "metrics"
    config = tmp_path / "c.toml"
    config.write_text(
        f"""[metrics]
directory = "{metrics_dir}"
[store]
database = "{tmp_path / "s.sqlite3"}"
spool_dir = "{tmp_path / "q"}"
[mda]
daemon_socket = "{tmp_path / "none.sock"}"
"""
    )
    env = {**os.environ, "MAILWARDEN_CONFIG": str(config)}
    result = subprocess.run(
        [sys.executable, "-m", "mailwarden", "mda", "--", "/bin/cat"],
        input=message("hi", "body"),
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 75, result.stderr  # daemon down: deferred
    assert not metrics_dir.exists() or not list(metrics_dir.iterdir())
