"""A generation's loader: loads the database once, then forks the workers that share it.

The front end starts one loader per generation (at start and at each reload)
as ``python -m mailwarden.daemon.loader FD PID``, where FD is its end of a
control socket pair and PID the front end's process id: the loader asks the
kernel for SIGTERM when that process dies (``parentdeath.py``), and on
SIGTERM, as when its channel closes, it stops its workers, so a daemon
killed with SIGKILL leaves no loader or worker behind.

Conversation on the channel (frames of ``channel.py``)::

    front end -> loader   {"op": "load", "settings": ..., "factory": ..., "workers": N}
    loader -> front end   {"event": "loaded", "version": ..., "signatures": N, "seconds": s}
                          or {"event": "failed", "reason": "..."} and exit
    loader -> front end   {"event": "worker", "pid": P} + the worker's channel, N times
    front end -> loader   {"op": "spawn"}   one more worker (one was killed or died)
                          {"op": "stop"}    exit; its workers end when their channels close

Workers are forked after the load and after ``gc.freeze()``, so the compiled
database and the Python objects around it stay shared copy-on-write: a
generation costs one database in memory, not one per worker.

SECURITY: runs with the daemon's rights and reads the signature files and
cache named by the administrator's configuration.  The settings arrive
pickled over a socket pair that only the front end, its parent, holds.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import os
import pickle
import signal
import socket
import sys
import time
from typing import Any

from mailwarden.daemon import worker
from mailwarden.daemon.backend import Backend, resolve_factory
from mailwarden.daemon.channel import ChannelClosed, recv_frame, send_frame
from mailwarden.parentdeath import die_with_parent

_children: set[int] = set()


def main(argv: list[str]) -> int:
    ctl = socket.socket(fileno=int(argv[0]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, _reap)
    signal.signal(signal.SIGTERM, _exit_on_term)
    if len(argv) > 1:
        die_with_parent(int(argv[1]))
    try:
        header, _payload, _fds = recv_frame(ctl)
        backend = _load(ctl, header)
        if backend is None:
            return 1
        for _ in range(int(header["workers"])):
            _spawn(ctl, backend)
        _serve(ctl, backend)
    except (ChannelClosed, ConnectionResetError, BrokenPipeError):
        pass
    finally:
        _stop_children()
    return 0


def encode_settings(settings: Any) -> str:
    return base64.b64encode(pickle.dumps(settings)).decode("ascii")


def _load(ctl: socket.socket, header: dict[str, Any]) -> Backend | None:
    started = time.perf_counter()
    try:
        settings = pickle.loads(base64.b64decode(header["settings"]))  # noqa: S301 - from our parent
        backend = resolve_factory(str(header["factory"]))(settings)
    except Exception as exc:
        send_frame(ctl, {"event": "failed", "reason": f"{type(exc).__name__}: {exc}"})
        return None
    # Keep the loaded objects out of the collector's reach so that workers do
    # not copy every page the collector would otherwise touch.
    gc.collect()
    gc.freeze()
    send_frame(
        ctl,
        {
            "event": "loaded",
            "version": backend.version,
            "signatures": backend.signature_count,
            "seconds": time.perf_counter() - started,
            "pid": os.getpid(),
        },
    )
    return backend


def _serve(ctl: socket.socket, backend: Backend) -> None:
    while True:
        header, _payload, _fds = recv_frame(ctl)
        op = header.get("op")
        if op == "spawn":
            _spawn(ctl, backend)
        elif op == "stop":
            return


def _spawn(ctl: socket.socket, backend: Backend) -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        ours.close()
        ctl.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        code = 0
        try:
            worker.serve(theirs, backend)
        except BaseException:
            code = 1
        os._exit(code)
    theirs.close()
    _children.add(pid)
    try:
        send_frame(ctl, {"event": "worker", "pid": pid}, fds=[ours.fileno()])
    finally:
        ours.close()


def _exit_on_term(_signum: int, _frame: object) -> None:
    # unwinds through main's finally, which stops the workers
    raise SystemExit(0)


def _reap(_signum: int, _frame: object) -> None:
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _children.discard(pid)


def _stop_children() -> None:
    """The front end is gone or said stop: workers still scanning finish, the rest end."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for pid in list(_children):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
