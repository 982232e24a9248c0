"""``mailwarden serve`` with the signature-update agents: ``update-watch`` follows a
freshclam folder into the daemon, ``update-mirror`` publishes the set in use, and
both are restarted when killed.

Real processes throughout: serve, the daemon, ``mailwarden update --watch`` and
``--serve-mirror``; the mirror is read over HTTP like another node would.
"""

from __future__ import annotations

import hashlib
import os
import signal
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mailwarden.config import defaults
from mailwarden.daemon import DaemonClient
from mailwarden.serve import ServeSettings, plan
from mailwarden.serve.listening import Endpoint
from serve.harness import ServeRun, free_port

Start = Callable[..., ServeRun]

PAYLOAD = b"mailwarden serve update-watch test payload\n"
SIGNATURE = f"{hashlib.md5(PAYLOAD).hexdigest()}:{len(PAYLOAD)}:Test.Serve.Watch\n"  # noqa: S324


def _ready(run: ServeRun, name: str, times: int = 1) -> None:
    run.wait_for(rf"^mailwarden-serve: INFO {name}: ready$", count=times)


def _overrides(folder: Path, port: int) -> dict[str, dict[str, Any]]:
    live = folder / "db" / "signatures"
    return {
        "engine": {"databases": [str(live)]},
        "update": {
            "database_dir": str(live),
            "watch_dir": str(folder / "clamav"),
            "watch_interval": 0.2,
            "mirror_listen": f"127.0.0.1:{port}",
        },
        "serve": {"agents": ["update-watch", "update-mirror"], "agent_settle_time": 0.5},
    }


def _start(start_serve: Start, folder: Path) -> tuple[ServeRun, int]:
    """serve with both update agents, once both are ready; and the mirror's port."""
    port = free_port()
    run = start_serve(_overrides(folder, port))
    _ready(run, "update-mirror")
    _ready(run, "update-watch")
    return run, port


def _freshclam_writes(run: ServeRun, folder: Path) -> None:
    """A new file in the watched folder, installed by the watcher (the daemon reloaded)."""
    (folder / "clamav").mkdir()
    (folder / "clamav" / "daily.hdb").write_text(SIGNATURE)
    run.wait_for(r"update: .*clamav: installed ")


def _get(port: int, name: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/{name}", timeout=30) as answer:
            return int(answer.status), bytes(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def _scan(run: ServeRun) -> str | None:
    with DaemonClient(run.socket, reuse=False, timeout=60) as client:
        return client.scan_bytes(PAYLOAD).name


def test_plan_runs_update_with_its_mode_and_knows_how_each_is_ready() -> None:
    config = defaults()
    config["serve"]["agents"] = ["update-watch", "update-mirror"]
    config["update"]["mirror_listen"] = "127.0.0.1:18026"
    settings = ServeSettings.from_config(config, config_file="/etc/mw.toml")
    _daemon, watch, mirror = plan(config, settings)
    assert watch.argv[3:] == ("update", "-c", "/etc/mw.toml", "--watch")
    assert mirror.argv[3:] == ("update", "-c", "/etc/mw.toml", "--serve-mirror")
    # the mirror holds a port; the watcher holds no socket: it must keep running
    assert mirror.listen == Endpoint(port=18026)
    assert watch.listen is None and watch.ping is None
    assert watch.settle == config["serve"]["agent_settle_time"] > 0


def test_watch_installs_freshclams_set_into_the_daemon_and_the_mirror_serves_it(
    start_serve: Start, serve_folder: Path
) -> None:
    run, port = _start(start_serve, serve_folder)
    assert _get(port, "MANIFEST")[0] == 503  # nothing installed yet
    assert _scan(run) is None

    _freshclam_writes(run, serve_folder)
    assert _scan(run) == "Test.Serve.Watch"

    status, manifest = _get(port, "MANIFEST")
    assert status == 200
    assert hashlib.sha256(SIGNATURE.encode()).hexdigest() in manifest.decode()
    assert _get(port, "daily.hdb") == (200, SIGNATURE.encode())
    assert run.stop() == 0
    assert run.leftovers() == []


def test_killed_update_agents_come_back_and_the_daemon_is_left_alone(
    start_serve: Start, serve_folder: Path
) -> None:
    run, port = _start(start_serve, serve_folder)
    daemon = run.child_pid("daemon")
    run.descendants()

    for name in ("update-watch", "update-mirror"):
        os.kill(run.child_pid(name), signal.SIGKILL)
        _ready(run, name, times=2)
        assert f"{name}: killed by SIGKILL" in run.log()
    assert run.child_pids("daemon") == [daemon]
    # the new mirror listens again, the new watcher still follows the folder
    assert _get(port, "MANIFEST")[0] == 503
    _freshclam_writes(run, serve_folder)
    assert _get(port, "daily.hdb") == (200, SIGNATURE.encode())
    assert run.stop() == 0
    assert run.leftovers() == []
