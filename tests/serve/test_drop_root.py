"""Every long-running command started by hand as root becomes ``[serve] user``.

Each command runs as a real process started as root on a configuration whose
``[serve] user`` is ``nobody``: once it listens, /proc shows every one of its
ids (real, effective, saved, file system) as nobody's, and the listener it
bound as root still answers.  A user that does not exist stops the command
with a configuration error naming file, line and key.

The commands must import modules after the drop, so they run on an
interpreter nobody can read: this one, or else Debian's python3 (same
version) with the checkout and the virtual environment's packages on
PYTHONPATH.

SECURITY: test-only; the processes listen on loopback or in a private folder
and are killed by pid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailwarden.config.render import toml_value
from mailwarden.daemon import DaemonClient, DaemonError
from mailwarden.daemon.pidfile import answers as answers_unix
from mailwarden.privileges import Identity, resolve_identity
from mailwarden.web.passwords import hash_password
from serve.harness import free_port
from support.tools import missing, require

DEADLINE = 60.0
SRC = Path(__file__).resolve().parents[2] / "src"


@dataclass
class Interpreter:
    argv: list[str]
    env: dict[str, str]


def _interpreter_for(user: str) -> Interpreter:
    candidates = [Interpreter([sys.executable], dict(os.environ))]
    system = shutil.which("python3", path="/usr/bin")
    if system:
        path = os.pathsep.join([str(SRC), sysconfig.get_paths()["purelib"]])
        candidates.append(Interpreter([system], {**os.environ, "PYTHONPATH": path}))
    for candidate in candidates:
        try:
            probe = subprocess.run(
                [*candidate.argv, "-c", "import mailwarden.cli, mailwarden.engine"],
                user=user,
                env=candidate.env,
                cwd="/",
                capture_output=True,
                timeout=120,
                check=False,
            )
        except PermissionError:
            continue
        if probe.returncode == 0:
            return candidate
    missing(f"no interpreter that {user} can read mailwarden with")


@pytest.fixture(scope="module")
def python() -> Interpreter:
    require(os.geteuid() == 0, "dropping privileges needs root")
    return _interpreter_for("nobody")


@pytest.fixture
def folder() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mwu-"))
    path.chmod(0o755)  # nobody must reach the folders serve's rules create inside
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _config(folder: Path, user: str = "nobody") -> Path:
    sections = {
        "engine": {"databases": [], "cache_dir": ""},
        "daemon": {
            "socket": f"{folder}/run/d.sock",
            "socket_group": "",
            "pid_file": f"{folder}/run/d.pid",
            "workers": 1,
        },
        "store": {
            "database": f"{folder}/state/db.sqlite3",
            "spool_dir": f"{folder}/state/quarantine",
        },
        "mda": {"agent_socket_group": ""},
        "metrics": {"directory": f"{folder}/state/metrics"},
        "web": {
            "password_hash": hash_password("x", n=2**4),
            "secret_file": f"{folder}/state/web.key",
        },
        "update": {"database_dir": f"{folder}/state/sets/signatures"},
        "serve": {"user": user},
    }
    lines: list[str] = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in values.items())
    path = folder / "mailwarden.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _ids(pid: int) -> tuple[set[int], set[int]]:
    uids: set[int] = set()
    gids: set[int] = set()
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            uids = {int(x) for x in line.split()[1:]}
        elif line.startswith("Gid:"):
            gids = {int(x) for x in line.split()[1:]}
    return uids, gids


def _tcp_answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _smtp_banner(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            return conn.recv(100).startswith(b"220")
    except OSError:
        return False


def _http_ok(port: int, path: str) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
            return conn.recv(100).startswith(b"HTTP/1.")
    except OSError:
        return False


def _daemon_pings(folder: Path) -> bool:
    try:
        with DaemonClient(f"{folder}/run/d.sock", reuse=False, timeout=10, connect_timeout=2) as c:
            return c.ping()
    except DaemonError:
        return False


#: name -> (arguments after the config, how to tell it listens and answers)
Case = tuple[Callable[[Path, int], list[str]], Callable[[Path, int], bool]]
CASES: dict[str, Case] = {
    "daemon": (lambda f, p: ["daemon", "--foreground"], lambda f, p: _daemon_pings(f)),
    "smtp-filter": (
        lambda f, p: ["smtp-filter", "--listen", f"127.0.0.1:{p}", "--downstream", "127.0.0.1:1"],
        lambda f, p: _smtp_banner(p),
    ),
    "smtp-proxy": (
        lambda f, p: ["smtp-proxy", "--listen", f"127.0.0.1:{p}", "--downstream", "127.0.0.1:1"],
        lambda f, p: _tcp_answers(p),
    ),
    "milter": (
        lambda f, p: ["milter", "--socket", f"unix:{f}/run/milter.sock"],
        lambda f, p: answers_unix(f / "run" / "milter.sock"),
    ),
    "mda-agent": (
        lambda f, p: ["mda-agent", "--socket", f"{f}/run/mda.sock"],
        lambda f, p: answers_unix(f / "run" / "mda.sock"),
    ),
    "pop3-proxy": (
        lambda f, p: ["pop3-proxy", "--listen", f"127.0.0.1:{p}", "--server", "127.0.0.1:1"],
        lambda f, p: _tcp_answers(p),
    ),
    "imap-proxy": (
        lambda f, p: ["imap-proxy", "--listen", f"127.0.0.1:{p}", "--server", "127.0.0.1:1"],
        lambda f, p: _tcp_answers(p),
    ),
    "web": (lambda f, p: ["web", "--listen", f"127.0.0.1:{p}"], lambda f, p: _http_ok(p, "/login")),
    "metrics": (
        lambda f, p: ["metrics", "--listen", f"127.0.0.1:{p}"],
        lambda f, p: _http_ok(p, "/metrics"),
    ),
    "update-mirror": (
        lambda f, p: ["update", "--serve-mirror", f"127.0.0.1:{p}"],
        lambda f, p: _http_ok(p, "/"),
    ),
}


@contextlib.contextmanager
def _started(python: Interpreter, argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*python.argv, "-m", "mailwarden", *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=python.env,
            cwd="/",
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


def _wait(proc: subprocess.Popen[bytes], ready: Callable[[], bool], log: Path) -> None:
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        if proc.poll() is not None:
            break
        if ready():
            return
        time.sleep(0.1)
    raise AssertionError(f"not ready (exit {proc.poll()}):\n{log.read_text(errors='replace')}")


def _assert_runs_as(pid: int, who: Identity) -> None:
    uids, gids = _ids(pid)
    assert uids == {who.uid}, f"pid {pid}: uids {uids}"
    assert gids == {who.gid}, f"pid {pid}: gids {gids}"


@pytest.mark.parametrize("name", list(CASES))
def test_started_as_root_it_runs_as_the_user_once_it_listens(
    name: str, python: Interpreter, folder: Path
) -> None:
    config = _config(folder)
    args, answers = CASES[name]
    port = free_port()
    log = folder / f"{name}.log"
    argv = [args(folder, port)[0], "-c", str(config), *args(folder, port)[1:]]
    with _started(python, argv, log) as proc:
        _wait(proc, lambda: answers(folder, port), log)
        nobody = resolve_identity("nobody")
        _assert_runs_as(proc.pid, nobody)
        if name == "daemon":
            # the loader and its workers start after the drop
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            assert children
            for child in children:
                _assert_runs_as(int(child), nobody)
        assert answers(folder, port), log.read_text(errors="replace")
        if name != "update-mirror":  # logs warnings only
            assert f"running as nobody (uid {nobody.uid}" in log.read_text(errors="replace")


def test_update_watch_gives_up_root_at_once(python: Interpreter, folder: Path) -> None:
    config = _config(folder)
    watched = folder / "watched"
    watched.mkdir()
    log = folder / "watch.log"
    with _started(python, ["update", "-c", str(config), "--watch", str(watched)], log) as proc:
        _wait(proc, lambda: "watching" in log.read_text(errors="replace"), log)
        _assert_runs_as(proc.pid, resolve_identity("nobody"))


@pytest.mark.parametrize("name", ["daemon", "smtp-filter", "web"])
def test_root_with_an_unknown_user_is_refused_naming_the_key(
    name: str, python: Interpreter, folder: Path
) -> None:
    config = _config(folder, user="no-such-user-here")
    args, _answers = CASES[name]
    port = free_port()
    argv = [args(folder, port)[0], "-c", str(config), *args(folder, port)[1:]]
    result = subprocess.run(
        [*python.argv, "-m", "mailwarden", *argv],
        env=python.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    line = config.read_text().splitlines().index('user = "no-such-user-here"') + 1
    assert f"{config}:{line}" in result.stderr
    assert "serve.user" in result.stderr and "no such user" in result.stderr
    # refused before it bound anything
    assert not (folder / "run" / "d.sock").exists()
    assert not _tcp_answers(port)


def test_user_root_is_the_explicit_way_to_keep_root(python: Interpreter, folder: Path) -> None:
    config = _config(folder, user="root")
    port = free_port()
    log = folder / "filter.log"
    argv = ["smtp-filter", "-c", str(config), "--listen", f"127.0.0.1:{port}"]
    with _started(python, [*argv, "--downstream", "127.0.0.1:1"], log) as proc:
        _wait(proc, lambda: _smtp_banner(port), log)
        _assert_runs_as(proc.pid, resolve_identity("root"))
