"""A scanning worker: one process, one job at a time, forked from its generation's loader.

The loader calls :func:`serve` in the child after ``fork``; the worker then
answers frames from the front end until its channel closes::

    request  {"kind": "bytes", "inline": true, "size": N, "all": false} + N bytes
             {"kind": "fd", "all": false}                 + one descriptor
             {"kind": "path", "path": "/x", "follow": true, "all": false}
    response {"verdict": {...Verdict.to_dict()}}  or  {"error": "message"}

Large inputs (spooled streams, FILDES files, paths) are mapped, not read.
Scan failures become ``error`` verdicts inside the engine; anything else that
escapes is answered as an error so that the worker survives bad input.

SECURITY: workers hold the loaded database and read hostile bytes; they run
with the daemon's rights, open only the paths a client names when path scans
are enabled (regular files only, symbolic links below the named path not
followed), and never write files.  A worker that hangs is killed by the front
end (``scan_timeout``) and replaced by its loader.
"""

from __future__ import annotations

import mmap
import os
import signal
import socket
import stat
import time
from typing import Any

from mailwarden.daemon.backend import Backend
from mailwarden.daemon.channel import ChannelClosed, close_fds, recv_frame, send_frame
from mailwarden.verdict import Verdict

#: smaller inputs are read into memory; larger ones are mapped
_MAP_THRESHOLD = 256 * 1024


def serve(chan: socket.socket, backend: Backend) -> None:
    """Answer jobs until the front end closes the channel."""
    # The front end stops workers by closing their channel or with SIGTERM;
    # a Ctrl-C on the terminal must not interrupt a scan half-way.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    while True:
        try:
            header, payload, fds = recv_frame(chan)
        except (ChannelClosed, ConnectionResetError):
            return
        try:
            response = _answer(backend, header, payload, fds)
        finally:
            close_fds(fds)
        try:
            send_frame(chan, response)
        except OSError:
            return


def _answer(
    backend: Backend, header: dict[str, Any], payload: bytes, fds: list[int]
) -> dict[str, Any]:
    all_matches = bool(header.get("all"))
    started = time.perf_counter()
    try:
        kind = header.get("kind")
        if kind == "bytes":
            verdict = backend.scan(payload, all_matches=all_matches)
        elif kind == "fd" and fds:
            verdict = _scan_fd(backend, fds[0], all_matches)
        elif kind == "path":
            fd = _open_path(str(header["path"]), follow=bool(header.get("follow")))
            try:
                verdict = _scan_fd(backend, fd, all_matches)
            finally:
                os.close(fd)
        else:
            return {"error": f"bad job {kind!r}"}
    except _Refused as exc:
        return {"error": str(exc)}
    except OSError as exc:
        return {"error": f"{exc.strerror or exc}."}
    except Exception as exc:  # one bad input must not cost the worker
        return {"error": f"Internal error: {type(exc).__name__}: {exc}"}
    data = verdict.to_dict()
    data["timings"]["worker"] = time.perf_counter() - started
    return {"verdict": data}


class _Refused(Exception):
    pass


def _open_path(path: str, *, follow: bool) -> int:
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK
    if not follow:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise _Refused(f"Access denied: {exc.strerror}.") from exc
    return fd


def _scan_fd(backend: Backend, fd: int, all_matches: bool) -> Verdict:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        # a pipe or socket would read as empty and pass as clean
        raise _Refused("Not a regular file.")
    size = info.st_size
    if size < _MAP_THRESHOLD:
        return backend.scan(_read_all(fd, size), all_matches=all_matches)
    with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mapped:
        return backend.scan(mapped, all_matches=all_matches)


def _read_all(fd: int, size: int) -> bytes:
    parts: list[bytes] = []
    offset = 0
    while offset < size:
        part = os.pread(fd, size - offset, offset)
        if not part:
            break
        parts.append(part)
        offset += len(part)
    return b"".join(parts)
