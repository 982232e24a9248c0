"""Whether a given process is the one listening on a TCP port (Linux /proc).

Usage::

    if listens_on(child_pid, 10025): ...      # the agent is ready

A connection test cannot tell whose listener answered: with the port held
by a stray process, an agent that failed to bind would look ready.  So the
supervisor matches the listening socket's inode in /proc/net/tcp{,6}
against the sockets the child holds in /proc/PID/fd, and connects to nothing.

SECURITY: reads /proc only; reading another process's fd folder needs its
user (serve and its children share one), and a failure reads as "not yet".
"""

from __future__ import annotations

import os

_LISTEN = "0A"


def listening_inodes(port: int) -> set[int]:
    """Inodes of the TCP sockets (IPv4 and IPv6) listening on ``port``."""
    found: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as fh:
                lines = fh.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            if int(fields[1].rpartition(":")[2], 16) == port:
                found.add(int(fields[9]))
    return found


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets process ``pid`` has open."""
    folder = f"/proc/{pid}/fd"
    found: set[int] = set()
    try:
        names = os.listdir(folder)
    except OSError:
        return found
    for name in names:
        try:
            target = os.readlink(f"{folder}/{name}")
        except OSError:
            continue
        if target.startswith("socket:[") and target.endswith("]"):
            found.add(int(target[8:-1]))
    return found


def listens_on(pid: int, port: int) -> bool:
    inodes = listening_inodes(port)
    return bool(inodes) and bool(inodes & socket_inodes(pid))
