"""Run ``mailwarden serve`` as a real process and watch what it does.

Usage (through the ``start_serve`` fixture in ``conftest.py``)::

    run = start_serve(extra_toml="")          # config in a fresh folder, serve started
    run.wait_for(r"daemon: ready")            # a log line, with a deadline
    run.child_pid("daemon")                   # from serve's "started, pid N" lines
    run.descendants()                         # every process below serve
    run.stop()                                # SIGTERM, wait, exit status

serve's standard error (its own lines and its children's) goes to a file
the test reads; deadlines only bound how long a test waits for something
that must happen, they measure nothing.

SECURITY: test-only; everything runs as the current user on private
sockets in a temporary folder and is killed by process id at the end.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailwarden.config.render import toml_value
from mailwarden.daemon import DaemonClient, DaemonError
from support.tools import require

#: generous: the daemon loads the bundled signatures on a busy 2-core machine
DEADLINE = 60.0


def current_user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def base_toml(folder: Path, overrides: dict[str, dict[str, Any]] | None = None) -> str:
    """A configuration that keeps every file inside ``folder`` and restarts quickly,
    with ``overrides`` (section -> key -> value) applied on top."""
    sections: dict[str, dict[str, Any]] = {
        "engine": {"cache_dir": ""},
        "daemon": {
            "socket": f"{folder}/d.sock",
            "socket_group": "",
            "pid_file": f"{folder}/d.pid",
            "workers": 1,
        },
        "store": {
            "database": f"{folder}/store/db.sqlite3",
            "spool_dir": f"{folder}/store/quarantine",
        },
        "serve": {
            "user": current_user(),
            "restart_delay": 0.05,
            "restart_delay_max": 0.5,
            "start_failures": 3,
            "agent_start_timeout": 60.0,
            "stop_timeout": 20.0,
        },
    }
    for name, values in (overrides or {}).items():
        sections.setdefault(name, {}).update(values)
    lines: list[str] = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


@dataclass
class ServeRun:
    folder: Path
    config: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    seen: dict[int, int] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, pattern: str, *, count: int = 1, deadline: float = DEADLINE) -> str:
        """The log once ``pattern`` occurs ``count`` times; fails past the deadline."""
        regex = re.compile(pattern, re.MULTILINE)
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            text = self.log()
            if len(regex.findall(text)) >= count:
                return text
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        text = self.log()
        if len(regex.findall(text)) >= count:
            return text
        raise AssertionError(f"no {count}x {pattern!r} in serve's log:\n{text}")

    def child_pids(self, name: str) -> list[int]:
        found = re.findall(
            rf"^mailwarden-serve: INFO {re.escape(name)}: started, pid (\d+)$",
            self.log(),
            re.MULTILINE,
        )
        return [int(p) for p in found]

    def child_pid(self, name: str) -> int:
        pids = self.child_pids(name)
        assert pids, f"{name} never started:\n{self.log()}"
        return pids[-1]

    @property
    def socket(self) -> str:
        return str(self.folder / "d.sock")

    def ping(self) -> bool:
        try:
            with DaemonClient(self.socket, reuse=False, timeout=10, connect_timeout=2) as c:
                return c.ping()
        except DaemonError:
            return False

    def descendants(self) -> dict[int, int]:
        """Processes below serve as pid -> start time; remembered for :meth:`leftovers`."""
        found = _descendants(self.proc.pid)
        self.seen.update(found)
        return found

    def leftovers(self) -> list[int]:
        """Processes ever seen below serve that still exist (same pid, same start time)."""
        return [pid for pid, start in self.seen.items() if _start_time(pid) == start]

    def wait_gone(self, processes: dict[int, int], deadline: float = DEADLINE) -> bool:
        """True once none of ``processes`` (pid -> start time) exists any more."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if all(_start_time(pid) != start for pid, start in processes.items()):
                return True
            time.sleep(0.05)
        return False

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, deadline: float = DEADLINE) -> int:
        return self.proc.wait(deadline)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.descendants()
            self.proc.send_signal(signal.SIGTERM)
        return self.wait()

    def kill_everything(self) -> None:
        """Last resort after a failed test: no process of ours may outlive it."""
        if self.proc.poll() is None:
            self.descendants()
            self.proc.kill()
            self.proc.wait()
        for pid in self.leftovers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def swaks(port: int, *args: str, cwd: Path | None = None) -> str:
    """What swaks printed sending one message to 127.0.0.1:``port`` (skips without it)."""
    require(shutil.which("swaks") is not None, "swaks is not installed (apt-get install swaks)")
    result = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{port}", "--to", "user@localhost", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )
    return result.stdout + result.stderr


def start_serve(folder: Path, toml: str, *args: str) -> ServeRun:
    config = folder / "mailwarden.toml"
    config.write_text(toml)
    log_path = folder / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mailwarden", "serve", "-c", str(config), *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return ServeRun(folder, config, proc, log_path)


def _start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name may hold spaces and parentheses: split after the last ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def _descendants(root: int) -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    found: dict[int, int] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                start = _start_time(pid)
                if start is not None:
                    found[pid] = start
                    frontier.append(pid)
    return found
