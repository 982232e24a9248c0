"""Whether a given process is the one listening on an address (Linux /proc).

Usage::

    endpoint = parse_endpoint("127.0.0.1:10025")      # or unix:/run/x.sock, inet:10030@host
    if listens_on(child_pid, endpoint): ...            # the agent is ready

A connection test cannot tell whose listener answered: with the port held
by a stray process, an agent that failed to bind would look ready.  So the
supervisor matches the listening socket's inode in /proc/net/tcp{,6} (by
port) or /proc/net/unix (by path) against the sockets the child holds in
/proc/PID/fd, and connects to nothing.

SECURITY: reads /proc only; reading another process's fd folder needs its
user (serve and its children share one), and a failure reads as "not yet".
"""

from __future__ import annotations

import os
from dataclasses import dataclass

_TCP_LISTEN = "0A"
#: __SO_ACCEPTCON in /proc/net/unix's Flags column: a listening socket
_UNIX_LISTENING = 0x10000


@dataclass(frozen=True, slots=True)
class Endpoint:
    #: a TCP port (any address), or 0 for a unix socket
    port: int = 0
    #: a unix socket's path, or "" for TCP
    path: str = ""

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.path else f"port {self.port}"


def parse_endpoint(text: str) -> Endpoint:
    """``HOST:PORT``, ``[v6]:PORT``, ``inet:PORT@HOST``, ``inet6:PORT@HOST``,
    ``unix:PATH``, ``local:PATH`` or ``/PATH``; ValueError for anything else."""
    kind, sep, rest = text.partition(":")
    if text.startswith("/"):
        return Endpoint(path=text)
    if sep and kind in ("unix", "local") and rest:
        return Endpoint(path=rest)
    sendmail = sep and kind in ("inet", "inet6")
    port = rest.partition("@")[0] if sendmail else text.rpartition(":")[2]
    if not port.isdigit():
        raise ValueError(f"not a listening address: {text!r}")
    return Endpoint(port=int(port))


def listening_inodes(endpoint: Endpoint) -> set[int]:
    """Inodes of the sockets listening on ``endpoint``."""
    if endpoint.path:
        return _unix_listening(endpoint.path)
    found: set[int] = set()
    for fields in _rows("/proc/net/tcp") + _rows("/proc/net/tcp6"):
        if len(fields) < 10 or fields[3] != _TCP_LISTEN:
            continue
        if int(fields[1].rpartition(":")[2], 16) == endpoint.port:
            found.add(int(fields[9]))
    return found


def _unix_listening(path: str) -> set[int]:
    found: set[int] = set()
    for fields in _rows("/proc/net/unix"):
        if len(fields) >= 8 and fields[7] == path and int(fields[3], 16) & _UNIX_LISTENING:
            found.add(int(fields[6]))
    return found


def _rows(table: str) -> list[list[str]]:
    try:
        with open(table, encoding="utf-8", errors="replace") as fh:
            return [line.split() for line in fh.readlines()[1:]]
    except OSError:
        return []


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


def listens_on(pid: int, endpoint: Endpoint) -> bool:
    inodes = listening_inodes(endpoint)
    return bool(inodes) and bool(inodes & socket_inodes(pid))
