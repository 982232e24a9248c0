"""mailwarden processes for the agent tests: the daemon and the agents, as the CLI runs them.

Usage::

    stack = Stack.create(root, extra_toml="...")      # writes mailwarden.toml
    stack.start_daemon()                               # `mailwarden daemon --foreground`
    stack.start_agent("smtp-filter", "--listen", "127.0.0.1:PORT", "--downstream", ...)
    stack.cli("quarantine", "list", "--json")          # -> CompletedProcess
    stack.stop_all()

Each process is stopped by its PID (SIGTERM, then SIGKILL); its output goes
to a log file under ``root`` that failing tests print.

SECURITY: test-only; everything listens on 127.0.0.1 or in ``root``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from mailwarden.daemon import DaemonClient
from support.identity import keep_test_user

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
MAILWARDEN = [sys.executable, "-m", "mailwarden"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_until(predicate: object, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self, timeout: float = 20.0) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)

    def output(self, limit: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-limit:]
        except OSError:
            return ""


@dataclass
class Stack:
    root: Path
    config: Path
    socket: str
    procs: dict[str, Proc] = field(default_factory=dict)

    @classmethod
    def create(cls, root: Path, *, extra_toml: str = "", workers: int = 1) -> Stack:
        root.mkdir(parents=True, exist_ok=True)
        sock = str(root / "d.sock")
        text = f"""\
[engine]
databases = []
cache_dir = ""

[store]
database = "{root / "store" / "mailwarden.sqlite3"}"
spool_dir = "{root / "store" / "quarantine"}"

[daemon]
socket = "{sock}"
socket_group = ""
pid_file = ""
workers = {workers}

[release]
secret_file = "{root / "release.key"}"
"""
        config = root / "mailwarden.toml"
        config.write_text(text + extra_toml)
        keep_test_user(config)
        return cls(root, config, sock)

    def _spawn(self, name: str, args: list[str]) -> Proc:
        log = self.root / f"{name}.log"
        out = open(log, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            popen = subprocess.Popen(
                [*MAILWARDEN, *args], stdout=out, stderr=subprocess.STDOUT, cwd=self.root
            )
        finally:
            out.close()
        proc = Proc(name, popen, log)
        self.procs[name] = proc
        return proc

    def start_daemon(self) -> Proc:
        proc = self._spawn("daemon", ["daemon", "-c", str(self.config), "--foreground"])

        def up() -> bool:
            if proc.popen.poll() is not None:
                raise AssertionError(f"daemon exited: {proc.output()}")
            try:
                return DaemonClient(self.socket, timeout=2, reuse=False).ping()
            except Exception:
                return False

        wait_until(up, 60, "the daemon")
        return proc

    def stop_daemon(self) -> None:
        proc = self.procs.pop("daemon", None)
        if proc is not None:
            proc.stop()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket)

    def start_agent(self, name: str, command: str, port: int, *args: str) -> Proc:
        proc = self._spawn(
            name,
            [
                command,
                "-c",
                str(self.config),
                "--listen",
                f"127.0.0.1:{port}",
                "--daemon-socket",
                self.socket,
                *args,
            ],
        )

        def up() -> bool:
            if proc.popen.poll() is not None:
                raise AssertionError(f"{name} exited: {proc.output()}")
            return port_open(port)

        wait_until(up, 30, name)
        return proc

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*MAILWARDEN, *args[:2], "-c", str(self.config), *args[2:]]
            if args and args[0] == "quarantine"
            else [*MAILWARDEN, *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def stop_all(self) -> None:
        # agents first: the daemon waits for its clients' sessions to end
        for proc in reversed(list(self.procs.values())):
            proc.stop()
        self.procs.clear()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.output()}" for p in self.procs.values())
