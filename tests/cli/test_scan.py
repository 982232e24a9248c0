"""`mailwarden scan` end to end: output lines, JSON, summary and exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent.parent / "data" / "golden"


def run(
    *args: str, stdin: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailwarden", "scan", *args],
        input=stdin.decode("latin-1") if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    cfg = tmp_path / "mailwarden.toml"
    cfg.write_text(f'[engine]\ndatabases = []\ncache_dir = "{tmp_path / "cache"}"\n')
    return cfg


def test_clean_message_exit_0(config: Path) -> None:
    msg = GOLDEN / "clean-plain.eml"
    res = run("-c", str(config), str(msg))
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0] == f"{msg}: OK"
    assert "Scanned messages: 1" in res.stdout


def test_infected_exit_1_and_clamscan_style_line(config: Path) -> None:
    msg = GOLDEN / "eicar-in-zip.eml"
    res = run("-c", str(config), "--no-summary", str(msg))
    assert res.returncode == 1
    assert res.stdout == f"{msg}: Eicar-Test-Signature FOUND\n"


def test_unscanned_only_exit_2(config: Path) -> None:
    msg = GOLDEN / "encrypted-zip.eml"
    res = run("-c", str(config), "--no-summary", str(msg))
    assert res.returncode == 2
    assert res.stdout.startswith(f"{msg}: UNSCANNED (encrypted")


def test_json_folder_with_workers(config: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    folder.mkdir()
    for name in ("clean-plain", "eicar-attached", "double-extension", "encrypted-zip"):
        shutil.copy(GOLDEN / f"{name}.eml", folder / f"{name}.eml")
    res = run("-c", str(config), "--json", "--workers", "2", str(folder))
    assert res.returncode == 1
    records = {Path(r["path"]).stem: r for r in map(json.loads, res.stdout.splitlines())}
    assert set(records) == {"clean-plain", "eicar-attached", "double-extension", "encrypted-zip"}
    assert records["clean-plain"]["status"] == "clean"
    eicar = records["eicar-attached"]
    assert eicar["status"] == "infected"
    assert eicar["findings"][0] == {
        "name": "Eicar-Test-Signature",
        "part": "2/eicar.com",
        "engine": "clamav",
        "category": "infected",
        "official": True,
    }
    assert records["double-extension"]["status"] == "suspicious"
    assert records["encrypted-zip"]["status"] == "unscanned"
    assert "encrypted" in records["encrypted-zip"]["reason"]


def test_stdin_and_no_default_database(config: Path, tmp_path: Path) -> None:
    raw = (GOLDEN / "eicar-in-zip.eml").read_bytes()
    res = run("-c", str(config), "--no-summary", "-", stdin=raw)
    assert res.returncode == 1 and res.stdout == "stream: Eicar-Test-Signature FOUND\n"
    empty = tmp_path / "empty-db"
    empty.mkdir()
    res = run(
        "-c", str(config), "--no-summary", "--no-default-database", "-d", str(empty), "-", stdin=raw
    )
    # without any signatures, EICAR is not found, and the message is clean
    assert res.returncode == 0 and res.stdout == "stream: OK\n"


def test_bad_config_names_file_line_and_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[limits]\nmax_depth = -1\n")
    res = run("-c", str(cfg), str(GOLDEN / "clean-plain.eml"))
    assert res.returncode == 2
    assert f"{cfg}:2" in res.stderr and "limits.max_depth" in res.stderr


def test_help_documents_exit_status() -> None:
    res = run("--help")
    assert res.returncode == 0
    assert "exit status" in res.stdout and "--no-default-database" in res.stdout
