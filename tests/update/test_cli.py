"""`mailwarden update` on the command line: exit statuses and messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from update.helpers import config, mirror

MAILWARDEN = [sys.executable, "-m", "mailwarden", "update"]


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MAILWARDEN, "-c", str(tmp_path / "mw.toml"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_install_status_and_refusal(tmp_path: Path) -> None:
    config(tmp_path)
    src = mirror(tmp_path / "m", "one")
    run = _run(tmp_path, "--from", str(src))
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("installed: ") and "daemon: not running" in run.stdout
    status = _run(tmp_path, "--status")
    assert status.returncode == 0 and "\n* " in status.stdout
    (src / "MANIFEST").write_bytes(b"garbage\n")
    bad = _run(tmp_path, "--from", str(src))
    assert bad.returncode == 1
    assert bad.stderr.startswith("mailwarden update: refused: ")
    assert "MANIFEST: line 1" in bad.stderr and "the set in use is kept" in bad.stderr


def test_no_source_is_a_usage_error(tmp_path: Path) -> None:
    config(tmp_path)
    run = _run(tmp_path)
    assert run.returncode == 2
    assert "no source" in run.stderr


def test_rollback_without_a_previous_set_fails_clearly(tmp_path: Path) -> None:
    config(tmp_path)
    run = _run(tmp_path, "--rollback")
    assert run.returncode == 1
    assert "no previous set" in run.stderr


def test_make_manifest_lists_signature_files_only(tmp_path: Path) -> None:
    config(tmp_path)
    folder = tmp_path / "pub"
    folder.mkdir()
    (folder / "a.hdb").write_text("44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature\n")
    (folder / "notes.txt").write_text("not a database\n")
    run = _run(tmp_path, "--make-manifest", str(folder))
    assert run.returncode == 0, run.stderr
    text = (folder / "MANIFEST").read_text()
    assert " a.hdb\n" in text and "notes.txt" not in text


def test_a_folder_it_cannot_write_is_a_clear_error(tmp_path: Path) -> None:
    import os

    if os.geteuid() == 0:
        # root writes anywhere: make the parent a file instead
        (tmp_path / "db").write_text("not a folder\n")
    else:
        (tmp_path / "db").mkdir(mode=0o500)
    config(tmp_path)
    run = _run(tmp_path, "--from", str(mirror(tmp_path / "m", "one")))
    assert run.returncode == 1
    assert run.stderr.startswith("mailwarden update: ") and "Traceback" not in run.stderr
    assert "the set in use is kept" in run.stderr
