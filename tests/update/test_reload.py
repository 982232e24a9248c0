"""A real `mailwarden daemon` reloads after `mailwarden update` and serves the new set."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from intercept.harness import Stack
from mailwarden.daemon import DaemonClient
from mailwarden.update import SetStore
from update.helpers import config_file, mirror, payload

MAILWARDEN = [sys.executable, "-m", "mailwarden"]


@pytest.fixture
def node() -> Iterator[Stack]:
    # unix socket paths are limited to 107 bytes: a short folder
    root = Path(tempfile.mkdtemp(prefix="mwu-"))
    sock = str(root / "d.sock")
    cfg = config_file(
        root,
        "reload_timeout = 120.0",
        f'socket = "{sock}"\nsocket_group = ""\npid_file = "{root / "d.pid"}"\nworkers = 1',
    )
    stack = Stack(root, cfg, sock)
    try:
        yield stack
    finally:
        stack.stop_all()
        shutil.rmtree(root, ignore_errors=True)


def _update(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MAILWARDEN, "update", "-c", str(stack.config), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _database(stack: Stack) -> str:
    stats = DaemonClient(stack.socket, timeout=30, reuse=False).stats()
    found = re.search(r"^DATABASE: version (\S+)", stats, re.MULTILINE)
    assert found, stats
    return found.group(1)


def _instream(stack: Stack, tag: str) -> str:
    return DaemonClient(stack.socket, timeout=30, reuse=False).instream(payload(tag))


def test_the_daemon_serves_the_new_set_after_update(node: Stack) -> None:
    first = _update(node, "--from", str(mirror(node.root / "m1", "one", created=1_800_000_000)))
    assert first.returncode == 0, first.stderr
    node.start_daemon()
    before = _database(node)
    assert "Test.Update.one.UNOFFICIAL FOUND" in _instream(node, "one")
    assert _instream(node, "two").endswith("OK")

    second = _update(node, "--from", str(mirror(node.root / "m2", "two", created=1_800_000_100)))
    assert second.returncode == 0, second.stderr
    assert "daemon: reloaded" in second.stdout
    version = re.search(r"database (\S+)\)", second.stdout)
    assert version is not None
    after = _database(node)
    assert after == version.group(1) != before
    assert "Test.Update.two.UNOFFICIAL FOUND" in _instream(node, "two")
    assert _instream(node, "one").endswith("OK")

    back = _update(node, "--rollback")
    assert back.returncode == 0, back.stderr
    assert "daemon: reloaded" in back.stdout
    assert _database(node) == before
    assert "Test.Update.one.UNOFFICIAL FOUND" in _instream(node, "one")


def test_a_refused_set_leaves_the_daemon_alone(node: Stack) -> None:
    assert _update(node, "--from", str(mirror(node.root / "m1", "one"))).returncode == 0
    node.start_daemon()
    before = _database(node)
    bad = mirror(node.root / "m2", "two", created=1_900_000_000)
    (bad / "test.hdb").write_text((bad / "test.hdb").read_text().replace("two", "TWO"))
    run = _update(node, "--from", str(bad))
    assert run.returncode == 1
    assert "SHA-256 does not match" in run.stderr
    assert _database(node) == before
    assert SetStore(node.root / "db" / "signatures").current() is not None
    assert "Test.Update.one.UNOFFICIAL FOUND" in _instream(node, "one")


def test_sighup_through_the_pid_file_when_the_socket_is_gone(node: Stack) -> None:
    assert _update(node, "--from", str(mirror(node.root / "m1", "one"))).returncode == 0
    node.start_daemon()
    before = _database(node)
    # the daemon keeps serving on its open socket; hide the path from update only
    hidden = node.root / "hidden.sock"
    Path(node.socket).rename(hidden)
    try:
        run = _update(node, "--from", str(mirror(node.root / "m2", "two", created=1_800_000_100)))
        assert run.returncode == 0, run.stderr
        assert "daemon: signalled: SIGHUP sent to process" in run.stdout
    finally:
        hidden.rename(node.socket)

    def reloaded() -> bool:
        return _database(node) != before

    from intercept.harness import wait_until

    wait_until(reloaded, 120, "the reload after SIGHUP")
    assert "Test.Update.two.UNOFFICIAL FOUND" in _instream(node, "two")
