"""Make the running daemon load the new set, and wait until it says it has.

Usage::

    outcome = reload_daemon(socket_path, pid_file, expect_version="local-3f2a...",
                            timeout=600)
    outcome.state      # "reloaded" | "signalled" | "not running" | "failed"

RELOAD is sent on the daemon's socket; then STATS is read until its
``DATABASE: version`` is the version the test load computed (the set is in
use), or ``RELOADS: ... last failed: ...`` reports a failure.  A RELOAD that
joined a reload already under way (which may have read the old set) is
followed by one more.  Without a socket, SIGHUP goes to the process in the
pid file; with neither, the daemon is not running and loads the new set
when it starts.

SECURITY: needs access to the daemon's socket (its group), or the right to
signal the process in the pid file; the pid file is read, never trusted
beyond being a number.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from mailwarden.daemon import DaemonClient
from mailwarden.daemon.client import DaemonError, DaemonUnavailable

_DATABASE = re.compile(r"^DATABASE: version (\S+)", re.MULTILINE)
_RELOADS = re.compile(r"^RELOADS: (\d+) last (.*)$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    state: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.state in ("reloaded", "signalled", "not running")


def _status(client: DaemonClient) -> tuple[str, int, str]:
    text = client.stats()
    version = _DATABASE.search(text)
    reloads = _RELOADS.search(text)
    return (
        version.group(1) if version else "",
        int(reloads.group(1)) if reloads else 0,
        reloads.group(2).strip() if reloads else "",
    )


def reload_daemon(
    socket_path: str,
    pid_file: str,
    *,
    expect_version: str | None,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> ReloadOutcome:
    if socket_path and os.path.exists(socket_path):
        client = DaemonClient(socket_path, timeout=30, reuse=False)
        try:
            return _by_socket(client, expect_version, timeout, sleep)
        except DaemonUnavailable:
            pass  # a stale socket: try the pid file
        except DaemonError as exc:
            return ReloadOutcome("failed", str(exc))
    pid = _read_pid(pid_file)
    if pid is None:
        return ReloadOutcome("not running", "the daemon loads the new set when it starts")
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return ReloadOutcome("not running", f"no process {pid} (stale {pid_file})")
    except PermissionError:
        return ReloadOutcome("failed", f"not allowed to signal process {pid} from {pid_file}")
    return ReloadOutcome("signalled", f"SIGHUP sent to process {pid}")


def _by_socket(
    client: DaemonClient,
    expect: str | None,
    timeout: float,
    sleep: Callable[[float], None],
) -> ReloadOutcome:
    version, count, last = _status(client)
    if expect is not None and version == expect:
        return ReloadOutcome("reloaded", f"the daemon already serves {version}")
    deadline = time.monotonic() + timeout
    asked = 0
    while asked < 2:
        client.reload()
        asked += 1
        while time.monotonic() < deadline:
            sleep(0.2)
            version, now_count, now_last = _status(client)
            if expect is None and now_count > count:
                return ReloadOutcome("reloaded", now_last)
            if expect is not None and version == expect:
                return ReloadOutcome("reloaded", now_last)
            if now_last != last and now_last.startswith("failed"):
                return ReloadOutcome("failed", now_last)
            if now_count > count:  # a reload finished, but not with the new set
                count, last = now_count, now_last
                break
        else:
            return ReloadOutcome("failed", f"no reload reported within {timeout:g}s")
    return ReloadOutcome("failed", f"the daemon serves {version}, not {expect}")


def _read_pid(pid_file: str) -> int | None:
    if not pid_file:
        return None
    try:
        with open(pid_file, encoding="ascii") as fh:
            text = fh.read(32).strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and int(text) > 1 else None
