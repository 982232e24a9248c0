"""Secrets are masked wherever the effective configuration is shown: the web page and
`mailwarden config check`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mailwarden.config import load_config, render
from mailwarden.config.schema import SECTIONS
from mailwarden.web.configview import MASK, effective
from web.conftest import FAST_HASH, write_config


def test_the_password_hash_is_the_one_secret_and_it_is_masked(tmp_path: Path) -> None:
    assert [(s.name, o.key) for s in SECTIONS for o in s.options if o.secret] == [
        ("web", "password_hash")
    ]
    config = load_config(write_config(tmp_path))
    rows = {(s.name, k): (v, origin) for s in effective(config) for k, v, origin in s.rows}
    value, origin = rows[("web", "password_hash")]
    assert value == MASK and origin.endswith("mailwarden.toml:16")
    assert rows[("web", "login_attempts")][0] == "3"
    assert FAST_HASH not in render(config, show_origin=True)
    assert 'password_hash = "(set, not shown)"' in render(config, show_origin=True)


def test_config_check_does_not_print_the_hash(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "mailwarden", "config", "check", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "password_hash" in result.stdout
    assert "scrypt$" not in result.stdout


def test_an_empty_secret_shows_as_empty(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, password_hash=""))
    rows = {(s.name, k): v for s in effective(config) for k, v, _ in s.rows}
    assert rows[("web", "password_hash")] == '""'
