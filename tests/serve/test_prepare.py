"""Started as root, serve creates the missing runtime folders for ``[serve] user``
and becomes that user before it starts anything."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mailwarden.config import defaults
from mailwarden.privileges import resolve_identity
from mailwarden.serve import prepare_folders
from mailwarden.serve.prepare import folders
from serve.harness import ServeRun
from support.tools import require

Start = Callable[..., ServeRun]


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[2])  # the effective uid
    raise AssertionError(f"no Uid line for {pid}")


def test_only_missing_folders_are_created_and_handed_over(tmp_path: Path) -> None:
    require(os.geteuid() == 0, "preparing folders for another user needs root")
    nobody = resolve_identity("nobody")
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    config = defaults()
    config["daemon"]["socket"] = str(existing / "d.sock")
    config["daemon"]["pid_file"] = str(tmp_path / "run" / "d.pid")
    config["engine"]["cache_dir"] = ""
    config["store"]["database"] = str(tmp_path / "state" / "db.sqlite3")
    config["store"]["spool_dir"] = str(tmp_path / "state" / "quarantine")

    done = prepare_folders(config, nobody)

    assert sorted(done) == sorted(
        f"created {tmp_path / name} for nobody" for name in ("run", "state")
    )
    for name in ("run", "state"):
        info = (tmp_path / name).stat()
        assert (info.st_uid, info.st_gid) == (nobody.uid, nobody.gid)
        assert stat.S_IMODE(info.st_mode) == 0o750
    # an existing folder keeps its owner and mode
    assert existing.stat().st_uid == 0
    assert stat.S_IMODE(existing.stat().st_mode) == 0o755


def test_the_watchers_signature_folder_is_prepared_only_when_it_runs() -> None:
    config = defaults()
    config["update"]["database_dir"] = "/srv/mw-signatures/signatures"
    assert Path("/srv/mw-signatures") not in folders(config)
    config["serve"]["agents"] = ["update-watch"]
    # it makes DATABASE_DIR.sets and switches the link in there
    assert Path("/srv/mw-signatures") in folders(config)


def test_nothing_is_prepared_for_the_current_user(tmp_path: Path) -> None:
    config = defaults()
    config["daemon"]["pid_file"] = str(tmp_path / "run" / "d.pid")
    me = resolve_identity(str(os.geteuid()))
    assert prepare_folders(config, me) == []
    assert not (tmp_path / "run").exists()


def _as_nobody(start_serve: Start, folder: Path) -> ServeRun:
    folder.chmod(0o755)  # nobody must reach the folders inside
    return start_serve(
        {
            "daemon": {"socket": f"{folder}/run/d.sock", "pid_file": f"{folder}/run/d.pid"},
            "store": {
                "database": f"{folder}/state/db.sqlite3",
                "spool_dir": f"{folder}/state/quarantine",
            },
            "serve": {"user": "nobody"},
        }
    )


def test_serve_started_as_root_prepares_then_drops_before_starting_anything(
    start_serve: Start, serve_folder: Path
) -> None:
    require(os.geteuid() == 0, "dropping privileges needs root")
    nobody = resolve_identity("nobody")
    run = _as_nobody(start_serve, serve_folder)
    log = run.wait_for(r"INFO daemon: (ready|restarting)")
    created = log.index(f"created {serve_folder}/run for nobody")
    dropped = log.index(f"running as nobody (uid {nobody.uid}, gid {nobody.gid})")
    assert created < dropped < log.index("daemon: ")
    assert (serve_folder / "run").stat().st_uid == nobody.uid
    run.stop()


def test_the_children_run_as_the_user(start_serve: Start, serve_folder: Path) -> None:
    require(os.geteuid() == 0, "dropping privileges needs root")
    try:
        probe = subprocess.run(
            [sys.executable, "-c", "import mailwarden.cli"], user="nobody", check=False
        )
    except PermissionError:
        probe = None
    if probe is None or probe.returncode != 0:
        pytest.skip("this interpreter or checkout is not readable by nobody")
    run = _as_nobody(start_serve, serve_folder)
    run.wait_for(r"^mailwarden-serve: INFO daemon: ready$")
    nobody = resolve_identity("nobody")
    assert _uid_of(run.proc.pid) == nobody.uid
    below = run.descendants()
    assert below
    assert {_uid_of(pid) for pid in below} == {nobody.uid}
    assert run.stop() == 0
    assert run.leftovers() == []
