"""server.py: listeners and their permissions, connection floods, pid file, signals."""

from __future__ import annotations

import contextlib
import grp
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from daemon.harness import EICAR, RunningDaemon, read_all, wait_for
from mailwarden.daemon import DaemonClient, DaemonStartError
from mailwarden.daemon import protocol as p
from support.identity import keep_test_user


def test_unix_socket_is_0660_and_tcp_is_off_by_default(daemon: RunningDaemon) -> None:
    mode = stat.S_IMODE(os.stat(daemon.socket).st_mode)
    assert mode == 0o660
    assert daemon.settings.tcp is None
    assert daemon.server.tcp_address is None
    assert all(sock.family == socket.AF_UNIX for sock, _unix in daemon.server._listeners)


def test_socket_mode_and_group_are_configurable(start_daemon) -> None:
    group = os.getgid()
    name = grp.getgrgid(group).gr_name
    d = start_daemon(socket_mode=0o600, socket_group=name)
    info = os.stat(d.socket)
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_gid == group


def test_tcp_on_loopback_when_configured(start_daemon) -> None:
    d = start_daemon(tcp=("127.0.0.1", 0))
    host, port = d.server.tcp_address
    assert host == "127.0.0.1"
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"zINSTREAM\0" + b"".join(bytes(c) for c in p.chunks(EICAR)))
        assert read_all(sock) == b"stream: Fake.Eicar FOUND\0"
    with DaemonClient(tcp=f"{host}:{port}") as client:
        assert client.ping()


def test_a_flood_of_connections_is_refused_beyond_the_limit(start_daemon) -> None:
    d = start_daemon(max_connections=4, command_timeout=10)
    idle = [d.connect() for _ in range(4)]
    try:
        wait_for(lambda: len(d.server._connections) == 4, what="4 connections")
        for _ in range(10):
            assert d.exchange(b"zPING\0") == b"Too many connections. ERROR\n"
    finally:
        for sock in idle:
            sock.close()
    wait_for(lambda: not d.server._connections, what="connections to close")
    assert d.exchange(b"zPING\0") == b"PONG\0"


def test_a_live_socket_is_not_taken_over(daemon: RunningDaemon, start_daemon) -> None:
    with pytest.raises(DaemonStartError, match="in use"):
        start_daemon(socket=daemon.socket)
    assert daemon.exchange(b"zPING\0") == b"PONG\0"


def test_a_stale_socket_file_is_replaced(start_daemon) -> None:
    folder = Path(tempfile.mkdtemp(prefix="mwd-"))
    path = folder / "stale.sock"
    with socket.socket(socket.AF_UNIX) as old:
        old.bind(str(path))  # bound, never listening: what a crash leaves behind
    d = start_daemon(socket=str(path))
    assert d.exchange(b"zPING\0") == b"PONG\0"


def test_pid_file_holds_our_pid(daemon: RunningDaemon) -> None:
    assert Path(daemon.settings.pid_file).read_text().strip() == str(os.getpid())


def test_a_database_that_does_not_load_stops_the_start(start_daemon) -> None:
    with pytest.raises(DaemonStartError, match="damaged on purpose"):
        start_daemon(backend_factory="daemon.fake_backend:load_broken")


# --- the command line, as systemd runs it --------------------------------------


def run_cli(folder: Path, *extra: str) -> subprocess.Popen[bytes]:
    config = folder / "mailwarden.toml"
    config.write_text('[engine]\ndatabases = []\ncache_dir = ""\n')
    keep_test_user(config)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mailwarden",
            "daemon",
            "--foreground",
            "-c",
            str(config),
            "--socket",
            str(folder / "d.sock"),
            "--socket-group",
            "",
            "--pid-file",
            str(folder / "d.pid"),
            "--workers",
            "1",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="mwd-"))


def test_cli_serves_reloads_on_sighup_and_stops_on_sigterm(folder: Path) -> None:
    proc = run_cli(folder)
    try:
        wait_for(lambda: (folder / "d.pid").exists() or proc.poll() is not None, what="start")
        assert proc.poll() is None
        assert int((folder / "d.pid").read_text()) == proc.pid
        client = DaemonClient(str(folder / "d.sock"), reuse=False)
        assert client.instream(EICAR) == "stream: Eicar-Test-Signature FOUND"
        os.kill(proc.pid, signal.SIGHUP)
        wait_for(lambda: "RELOADS: 1 last ok" in client.stats(), what="reload")
        os.kill(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert b"stopped" in output
    assert not (folder / "d.sock").exists()
    assert not (folder / "d.pid").exists()


def test_cli_reports_a_bad_tcp_flag(folder: Path) -> None:
    proc = run_cli(folder, "--tcp", "nonsense")
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert b"--tcp" in output


def _below(pid: int) -> set[int]:
    """Every process below ``pid`` (the loader and its workers)."""
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            if child not in found:
                found.add(child)
                frontier.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _pings(folder: Path) -> bool:
    try:
        return DaemonClient(str(folder / "d.sock"), reuse=False, timeout=5).ping()
    except Exception:
        return False


def test_a_daemon_killed_with_sigkill_leaves_no_loader_or_worker(folder: Path) -> None:
    proc = run_cli(folder)
    below: set[int] = set()
    try:
        wait_for(lambda: _pings(folder) or proc.poll() is not None, 60, "the daemon")
        below = _below(proc.pid)
        assert len(below) >= 2, below  # the loader and one worker
        proc.kill()
        proc.wait()
        # the loader gets SIGTERM from the kernel (parent death) and stops its workers
        wait_for(lambda: not any(_alive(pid) for pid in below), 30, "loader and workers to end")
    finally:
        for pid in [proc.pid, *below]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()


def test_a_second_daemon_on_the_same_pid_file_is_refused_before_it_loads(folder: Path) -> None:
    first = run_cli(folder)
    try:
        wait_for(lambda: _pings(folder) or first.poll() is not None, 60, "the first daemon")
        second = run_cli(folder)
        output, _ = second.communicate(timeout=60)
        assert second.returncode == 2
        assert f"a mailwarden daemon is running as pid {first.pid}".encode() in output, output
        assert b"stop it first" in output
        assert b"signatures loaded" not in output
        assert _pings(folder)
        assert int((folder / "d.pid").read_text()) == first.pid
    finally:
        first.terminate()
        first.communicate(timeout=60)
