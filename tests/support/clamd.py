"""Run Debian's clamd as a private reference scanner and talk to it over zINSTREAM.

Used by the ``clamd_factory`` fixture in ``tests/conftest.py``::

    handle = start_clamd(Path("sigdir"))
    try:
        reply = handle.scan(raw_bytes)      # "stream: OK" / "stream: Name FOUND"
        outcome, name = parse_reply(reply)  # ("infected", "Name")
    finally:
        handle.stop()

Each daemon gets its own folder from ``tempfile.mkdtemp`` holding its
``clamd.conf``, log, pid file and unix socket, runs in the foreground in its own
session (so a Ctrl-C on the test run does not reach it first) and is stopped by
its PID.  Its clean-file cache is off so repeated scans really scan.

SECURITY: the daemon listens on a unix socket inside a 0700 folder; TCP is
opened only on request and then only on 127.0.0.1.  There is no ``User``
directive: clamd keeps the identity of whoever runs the tests (root under CI),
which is needed for it to read a database folder owned by that user, and safe
because it only ever scans bytes streamed to it, never paths.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: Where Debian's clamav-daemon installs the daemon; PATH is only a fallback
#: because root's PATH is not always the same under CI.
DEBIAN_CLAMD = Path("/usr/sbin/clamd")

#: clamd appends this to names from unsigned databases; our engine does not.
_UNOFFICIAL = re.compile(r"\.UNOFFICIAL$")

CHUNK = 64 * 1024
_FOUND = " FOUND"


class ClamdStartError(RuntimeError):
    """clamd exited or did not answer PING in time; the message quotes its log."""


def find_clamd() -> Path | None:
    """The clamd binary: ``$MAILWARDEN_CLAMD``, Debian's path, then ``PATH``."""
    override = os.environ.get("MAILWARDEN_CLAMD")
    if override:
        return Path(override)
    if DEBIAN_CLAMD.exists():
        return DEBIAN_CLAMD
    found = shutil.which("clamd")
    return Path(found) if found else None


def normalize_name(name: str) -> str:
    """A signature name as our engine reports it (clamd's ``.UNOFFICIAL`` removed)."""
    return _UNOFFICIAL.sub("", name.strip())


def parse_reply(reply: str) -> tuple[str, str]:
    """Split a clamd scan reply into ``(outcome, detail)``.

    ``outcome`` is ``clean``, ``infected`` (detail: normalized signature name) or
    ``error`` (detail: clamd's text, e.g. a size limit).
    """
    body = reply.split(":", 1)[1].strip() if reply.startswith("stream:") else reply.strip()
    if body == "OK":
        return "clean", ""
    if body.endswith(_FOUND):
        return "infected", normalize_name(body[: -len(_FOUND)])
    return "error", body


def render_config(
    workdir: Path, database_dir: Path, *, tcp_port: int | None = None, max_threads: int = 4
) -> str:
    """The text of a clamd.conf that keeps everything inside ``workdir``."""
    lines = [
        "Foreground yes",
        f"LogFile {workdir / 'clamd.log'}",
        "LogTime yes",
        f"PidFile {workdir / 'clamd.pid'}",
        f"TemporaryDirectory {workdir / 'tmp'}",
        f"DatabaseDirectory {database_dir}",
        "OfficialDatabaseOnly no",
        f"LocalSocket {workdir / 'clamd.sock'}",
        "LocalSocketMode 600",
        "FixStaleSocket yes",
        f"MaxThreads {max_threads}",
        # Scans are compared message by message, so a cached "clean" must not
        # stand in for a real scan.
        "DisableCache yes",
        "SelfCheck 0",
        "StreamMaxLength 64M",
        "MaxScanSize 400M",
        "MaxFileSize 100M",
        "ReadTimeout 180",
        "CommandReadTimeout 30",
        "Bytecode yes",
    ]
    if tcp_port is not None:
        lines += [f"TCPSocket {tcp_port}", "TCPAddr 127.0.0.1"]
    return "\n".join(lines) + "\n"


def instream(socket_path: Path, data: bytes, *, timeout: float = 300.0) -> str:
    """Stream ``data`` to clamd with zINSTREAM and return its reply text."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(socket_path))
        sock.sendall(b"zINSTREAM\0")
        view = memoryview(data)
        for offset in range(0, len(view), CHUNK):
            chunk = view[offset : offset + CHUNK]
            sock.sendall(struct.pack(">I", len(chunk)))
            sock.sendall(chunk)
        sock.sendall(struct.pack(">I", 0))
        return _read_reply(sock)


def ping(socket_path: Path, *, timeout: float = 5.0) -> bool:
    """True when clamd answers zPING on ``socket_path``."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(socket_path))
            sock.sendall(b"zPING\0")
            return _read_reply(sock) == "PONG"
    except OSError:
        return False


def _read_reply(sock: socket.socket) -> str:
    buf = b""
    while not buf.endswith(b"\0"):
        got = sock.recv(4096)
        if not got:
            break
        buf += got
    return buf.rstrip(b"\0").decode("utf-8", "replace")


@dataclass
class ClamdHandle:
    """A running clamd started by :func:`start_clamd`."""

    process: subprocess.Popen[bytes]
    workdir: Path
    socket_path: Path
    config: Path
    log: Path
    tcp_port: int | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def scan(self, data: bytes) -> str:
        """clamd's reply for ``data``, e.g. ``stream: Eicar-Test-Signature.UNOFFICIAL FOUND``."""
        return instream(self.socket_path, data)

    def ping(self) -> bool:
        return ping(self.socket_path)

    def log_text(self, limit: int = 4000) -> str:
        """The end of clamd's log file and of its captured stdout/stderr."""
        parts = []
        for path in (self.log, self.workdir / "clamd.out"):
            if path.exists():
                text = path.read_text("utf-8", "replace")
                parts.append(f"--- {path.name} ---\n{text[-limit:]}")
        return "\n".join(parts) or "(clamd wrote no log)"

    def stop(self, timeout: float = 20.0) -> None:
        """Stop clamd by its PID (TERM, then KILL) and remove its folder."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout)
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_clamd(
    database_dir: Path,
    *,
    binary: Path | None = None,
    tcp_port: int | None = None,
    max_threads: int = 4,
    timeout: float = 180.0,
) -> ClamdHandle:
    """Start clamd on ``database_dir`` and return once it answers PING.

    Raises :class:`ClamdStartError` with clamd's log when it exits early or is
    not ready within ``timeout`` seconds (loading a large database takes a while).
    """
    exe = binary or find_clamd()
    if exe is None:
        raise ClamdStartError("clamd is not installed")
    # A short /tmp path: unix socket paths are limited to 107 bytes.
    workdir = Path(tempfile.mkdtemp(prefix="mw-clamd-"))
    (workdir / "tmp").mkdir()
    config = workdir / "clamd.conf"
    config.write_text(
        render_config(workdir, database_dir.resolve(), tcp_port=tcp_port, max_threads=max_threads)
    )
    with open(workdir / "clamd.out", "wb") as out:
        process = subprocess.Popen(
            [str(exe), "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    handle = ClamdHandle(
        process=process,
        workdir=workdir,
        socket_path=workdir / "clamd.sock",
        config=config,
        log=workdir / "clamd.log",
        tcp_port=tcp_port,
    )
    deadline = time.monotonic() + timeout
    while not handle.ping():
        if process.poll() is not None:
            log = handle.log_text()
            handle.stop()
            raise ClamdStartError(f"clamd exited with {process.returncode} at startup\n{log}")
        if time.monotonic() > deadline:
            log = handle.log_text()
            handle.stop()
            raise ClamdStartError(f"clamd did not answer PING within {timeout:.0f}s\n{log}")
        time.sleep(0.1)
    return handle


#: What the ``clamd_factory`` fixture yields: ``start(database_dir, *, tcp_port=None)``.
ClamdFactory = Callable[..., ClamdHandle]
