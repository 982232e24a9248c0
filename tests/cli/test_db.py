"""`mailwarden db info`: what was loaded, what was skipped and why."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).parent.parent / "data"


def db_info(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "m.toml"
    cfg.write_text(f'[engine]\ndatabases = []\ncache_dir = "{tmp_path / "cache"}"\n')
    return subprocess.run(
        [sys.executable, "-m", "mailwarden", "db", "info", "-c", str(cfg), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_counts_loaded_and_skipped(tmp_path: Path) -> None:
    db = tmp_path / "db"
    db.mkdir()
    (db / "a.hdb").write_text("44d88612fea8a8f36de82e1278abb02f:68:Test.Hash\n")
    (db / "b.ndb").write_text("Test.Body:0:*:6d61696c7761726465\nTest.EP:1:EP+10:41424344\n")
    (db / "c.cbc").write_text("bytecode is not supported\n")
    (db / "rules.yar").write_text('rule r { strings: $a = "x" condition: $a }\n')
    res = db_info(tmp_path, "--json", "--no-default-database", "-d", str(db))
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["loaded"]["hdb"] == 1
    assert info["loaded"]["ndb"] == 1
    assert info["loaded"]["yara"] == 1
    assert info["signatures"] == 3
    # unsupported things are counted with a reason, never dropped silently
    assert any("cbc" in why for why in info["skipped"]), info["skipped"]
    assert sum(n for why, n in info["skipped"].items() if "cbc" not in why) >= 1
    assert not any("yar" in why for why in info["skipped"])
    assert info["version"].startswith("local-")


def test_second_load_uses_the_cache(tmp_path: Path) -> None:
    args = ("--json", "--no-default-database", "-d", str(DATA / "signatures"))
    first = json.loads(db_info(tmp_path, *args).stdout)
    second = json.loads(db_info(tmp_path, *args).stdout)
    assert first["from_cache"] is False and second["from_cache"] is True
    assert first["digest"] == second["digest"] and first["loaded"] == second["loaded"]


def test_broken_database_names_file_and_line(tmp_path: Path) -> None:
    db = tmp_path / "bad.ndb"
    db.write_text("Good:0:*:41424344454647\nBad:0:*:zz\n")
    res = db_info(tmp_path, "--no-default-database", "-d", str(db))
    assert res.returncode == 2
    assert f"{db}:2" in res.stderr
