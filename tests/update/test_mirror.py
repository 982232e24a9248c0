"""`update --serve-mirror` on one node, `update --from http://...` on another."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from intercept.harness import free_port, port_open, wait_until
from mailwarden.update import SetStore
from support.identity import keep_test_user

MAILWARDEN = [sys.executable, "-m", "mailwarden"]
KEY = "n" * 48


def _config(root: Path, key_file: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "mw.toml"
    path.write_text(
        f"""
[engine]
databases = ["{root / "db" / "signatures"}"]
cache_dir = ""

[update]
database_dir = "{root / "db" / "signatures"}"
key_file = "{key_file}"

[daemon]
socket = ""
pid_file = ""
"""
    )
    keep_test_user(path)
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MAILWARDEN, "update", *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def node_a(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    from update.helpers import mirror

    key_file = tmp_path / "update.key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    cfg = _config(tmp_path / "a", key_file)
    src = tmp_path / "upstream"
    mirror(src, "one")
    assert _cli("-c", str(cfg), "--make-manifest", str(src)).returncode == 0
    done = _cli("-c", str(cfg), "--from", str(src))
    assert done.returncode == 0, done.stderr
    port = free_port()
    server = subprocess.Popen(
        [*MAILWARDEN, "update", "-c", str(cfg), "--serve-mirror", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: port_open(port), 30, "the mirror")
        yield cfg, f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(20)


def test_a_second_node_installs_the_first_nodes_set(
    tmp_path: Path, node_a: tuple[Path, str]
) -> None:
    _, url = node_a
    cfg_b = _config(tmp_path / "b", tmp_path / "update.key")
    run = _cli("-c", str(cfg_b), "--from", url)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("installed: ")
    a = SetStore(tmp_path / "a" / "db" / "signatures")
    b = SetStore(tmp_path / "b" / "db" / "signatures")
    assert a.current() == b.current()
    assert (tmp_path / "b" / "db" / "signatures" / "test.hdb").read_bytes() == (
        tmp_path / "upstream" / "test.hdb"
    ).read_bytes()
    again = _cli("-c", str(cfg_b), "--from", url)
    assert again.returncode == 0 and again.stdout.startswith("up to date")


def test_the_mirror_serves_listed_files_only(node_a: tuple[Path, str]) -> None:
    _, url = node_a
    with urllib.request.urlopen(f"{url}/MANIFEST", timeout=10) as reply:  # noqa: S310
        text = reply.read()
    assert text.startswith(b"mailwarden-manifest 1\n") and b"\nhmac-sha256 " in text
    for path in ("/mw.toml", "/../mw.toml", "/%2e%2e/mw.toml", "/etc/passwd", "/test.hdb/x", "/"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{url}{path}", timeout=10)  # noqa: S310
        assert err.value.code == 404, path


def test_a_node_with_another_key_refuses_the_set(tmp_path: Path, node_a: tuple[Path, str]) -> None:
    _, url = node_a
    other = tmp_path / "other.key"
    other.write_text("o" * 48 + "\n")
    other.chmod(0o600)
    cfg_c = _config(tmp_path / "c", other)
    run = _cli("-c", str(cfg_c), "--from", url)
    assert run.returncode == 1
    assert "signature does not verify" in run.stderr and "the set in use is kept" in run.stderr
    assert SetStore(tmp_path / "c" / "db" / "signatures").current() is None
