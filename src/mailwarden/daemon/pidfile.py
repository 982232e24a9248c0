"""Is a daemon already running on these paths?  Asked before a new one starts.

Usage::

    holder = running_daemon(settings.pid_file, settings.socket)
    if holder: raise ...(f"{holder}; stop it first")     # "pid 4101 (pid file ...)"

A daemon is running when its pid file names a live process whose command
line is a mailwarden daemon, or when something answers on its unix socket.
A pid file left by a daemon that was killed (no such process, or the pid
now belongs to another program) does not count, nor does a socket file
nobody listens on: those are stale and the new daemon replaces them.
``mailwarden daemon`` asks before it loads the database (a second daemon
must not replace a live one's socket); ``mailwarden serve`` asks before it
starts anything, so a serve started beside the children of a killed one
says so instead of running two sets side by side.

SECURITY: reads the pid file, /proc/PID/cmdline and connects to the socket;
signals nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from mailwarden.unixsocket import answers

# answers stays importable from here, where it was first defined
__all__ = ["answers", "running_daemon"]


def running_daemon(pid_file: str, socket_path: str) -> str | None:
    """What shows a daemon is running on these paths, or None."""
    pid = _live_daemon_pid(pid_file) if pid_file else None
    if pid is not None:
        return f"a mailwarden daemon is running as pid {pid} (pid file {pid_file})"
    if socket_path and answers(socket_path):
        return f"a daemon answers on {socket_path}"
    return None


def _live_daemon_pid(pid_file: str) -> int | None:
    try:
        text = Path(pid_file).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    if not text.isdigit() or int(text) in (0, os.getpid()):
        return None
    pid = int(text)
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    # the pid may have been reused by another program since the daemon died
    if b"daemon" in argv and any(b"mailwarden" in part for part in argv):
        return pid
    return None
