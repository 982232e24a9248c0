"""Binding the unix sockets of the long-running servers: daemon, mda agent, milter.

Usage::

    sock = bind_unix(settings.socket, mode=0o660, group="mailwarden",
                     group_key="socket_group", owner_name="mailwarden daemon")
    ...                                   # listening; accept on it
    server = await start_unix_server(callback, path, mode=0o660,
                                     owner_name="milter")   # the same, as an asyncio server
    answers(path)                         # does something accept connections there?

Both do one sequence: make the parent folder; if something is at the path,
refuse it unless it is a socket nobody answers on (what a killed server
leaves behind), which is removed; bind under a umask of 0o177; listen;
hand the socket to ``group`` (when set) and give it ``mode``.  Any failure
after the bind closes the socket and removes its file, so a second attempt
does not find a stale one.  Errors are ``OSError`` whose text names what the
administrator has to fix: the configuration key of the group
(``socket_group 'x' does not exist``), the program already running on the
socket (``... is in use by a running mda agent``), or a path that is not a
socket.

SECURITY: the socket is owner-only from the moment it exists until the
configured group and mode are applied, so no one else can connect in
between; it listens before it is widened, while only its owner (and root)
can connect.  Nothing at the path is trusted: a regular file, a folder or a
symbolic link (even one to a socket) is refused and left as it is; a socket
is removed only when nothing accepts a connection on it within a second, so
a second server cannot take a live one's socket.  The umask is process-wide
and tightened only around the bind call: a file another thread creates in
that instant comes out owner-only, never wider.  Needs write access to the
parent folder; giving the socket to ``group`` needs root or membership of
that group.  Nothing else is read or changed.
"""

from __future__ import annotations

import asyncio
import grp
import os
import socket
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path

#: owner read and write only: what a socket file gets when bound under it
_PRIVATE_UMASK = 0o177
#: seconds a probe waits for a connection before calling the socket dead
_PROBE_TIMEOUT = 1.0


def answers(path: str | os.PathLike[str]) -> bool:
    """Whether something accepts connections on the unix socket ``path``."""
    if not os.path.lexists(path):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(_PROBE_TIMEOUT)
        try:
            probe.connect(os.fspath(path))
        except OSError:
            return False
    return True


def bind_unix(
    path: str | os.PathLike[str],
    *,
    mode: int,
    group: str = "",
    group_key: str = "socket_group",
    owner_name: str,
) -> socket.socket:
    """A listening stream socket at ``path``; see the module documentation.

    ``group``: the group the socket is handed to, none when empty;
    ``group_key``: the configuration key it came from, named when it does not
    exist; ``owner_name``: the program that binds, named when another copy
    already answers on ``path``.
    """
    where = Path(path)
    sock = _bind_private(where, owner_name)
    try:
        sock.listen(socket.SOMAXCONN)
        _grant(where, mode, group, group_key)
    except BaseException:
        sock.close()
        where.unlink(missing_ok=True)
        raise
    return sock


async def start_unix_server(
    client_connected_cb: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    path: str | os.PathLike[str],
    *,
    mode: int,
    group: str = "",
    group_key: str = "socket_group",
    owner_name: str,
) -> asyncio.Server:
    """:func:`bind_unix` for an asyncio stream server: same checks, order and errors."""
    where = Path(path)
    sock = _bind_private(where, owner_name)
    try:
        server = await asyncio.start_unix_server(client_connected_cb, sock=sock)
    except BaseException:
        sock.close()
        where.unlink(missing_ok=True)
        raise
    try:
        _grant(where, mode, group, group_key)
    except BaseException:
        server.close()
        where.unlink(missing_ok=True)
        raise
    return server


def _bind_private(path: Path, owner_name: str) -> socket.socket:
    """A socket bound at ``path``, readable and writable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _clear(path, owner_name)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # a chmod after the bind would leave a window in which others could connect
    old = os.umask(_PRIVATE_UMASK)
    try:
        sock.bind(str(path))
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(old)
    return sock


def _clear(path: Path, owner_name: str) -> None:
    """Remove a stale socket at ``path``; refuse anything else that is there."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    # lstat: a symbolic link is not followed, so it cannot point the unlink elsewhere
    if not stat.S_ISSOCK(info.st_mode):
        raise OSError(f"{path} exists and is not a socket")
    if answers(path):
        raise OSError(f"{path} is in use by a running {owner_name}")
    path.unlink()


def _grant(path: Path, mode: int, group: str, group_key: str) -> None:
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError as exc:
            raise OSError(f"{group_key} {group!r} does not exist") from exc
        os.chown(path, -1, gid)
    os.chmod(path, mode)
