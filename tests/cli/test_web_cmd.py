"""`mailwarden web passwd`, and `mailwarden web` / `mailwarden metrics` refusing to start
with a clear error."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from mailwarden.web.passwords import verify_password
from support.identity import keep_test_user

MW = [sys.executable, "-m", "mailwarden"]


def _run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MW, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def test_passwd_prints_a_hash_that_verifies() -> None:
    result = _run("web", "passwd", "--stdin", stdin="a long enough password\n")
    assert result.returncode == 0, result.stderr
    stored = result.stdout.strip()
    assert stored.startswith("scrypt$32768$8$1$")
    assert verify_password("a long enough password", stored)
    assert "[web] password_hash" in result.stderr


def test_passwd_refuses_a_short_password_and_a_missing_terminal() -> None:
    short = _run("web", "passwd", "--stdin", stdin="short\n")
    assert short.returncode == 2 and "at least 10 characters" in short.stderr
    assert short.stdout == ""
    no_tty = _run("web", "passwd")
    assert no_tty.returncode == 2 and "use --stdin" in no_tty.stderr


def test_web_without_a_password_names_the_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "m.toml"
    config.write_text('[web]\nlisten = "127.0.0.1:8025"\n')
    result = _run("web", "-c", str(config))
    assert result.returncode == 2
    assert str(config) in result.stderr and "password_hash" in result.stderr
    assert "mailwarden web passwd" in result.stderr


def test_a_bad_listen_value_names_its_line(tmp_path: Path) -> None:
    config = tmp_path / "m.toml"
    config.write_text('[metrics]\nlisten = "everywhere"\n')
    result = _run("metrics", "-c", str(config))
    assert result.returncode == 2
    assert f"{config}:2" in result.stderr and "HOST:PORT" in result.stderr


def test_a_busy_port_is_one_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "m.toml"
    config.write_text(f'[metrics]\ndirectory = "{tmp_path / "m"}"\n')
    keep_test_user(config)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _run("metrics", "-c", str(config), "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 2
    assert "cannot listen" in result.stderr and "Address already in use" in result.stderr


def test_help_is_a_manual() -> None:
    for command in ("web", "metrics"):
        result = _run(command, "--help")
        assert result.returncode == 0
        assert "exit status:" in result.stdout and "examples:" in result.stdout
