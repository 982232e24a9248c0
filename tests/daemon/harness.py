"""Run the daemon inside the test process and talk to it byte by byte.

Usage (through the fixtures in ``conftest.py``)::

    d = start_daemon(workers=2, queue=4)          # fake backend unless real=True
    d.exchange(b"zPING\\0")                        # -> b"PONG\\0"
    with d.client() as client: client.ping()
    d.stop()

The server runs in a thread with its own event loop; its loaders and workers
are real processes.  Sockets live in a fresh short folder because unix socket
paths are limited to 107 bytes.

SECURITY: test-only; everything listens on private sockets (TCP only on
127.0.0.1 when a test asks) and is stopped at the end of each test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailwarden.daemon import DaemonClient
from mailwarden.daemon.backend import DEFAULT_FACTORY
from mailwarden.daemon.server import Server
from mailwarden.daemon.settings import DaemonSettings
from mailwarden.engine import EngineSettings

TESTS = Path(__file__).resolve().parents[1]
FAKE = "daemon.fake_backend:load"
FAKE_BROKEN = "daemon.fake_backend:load_broken"
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def _export_tests_path() -> None:
    """The loader is a new interpreter: it must find ``daemon.fake_backend``."""
    current = os.environ.get("PYTHONPATH", "")
    if str(TESTS) not in current.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), current) if p)


@dataclass
class RunningDaemon:
    server: Server
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    folder: Path
    settings: DaemonSettings
    stopped: bool = field(default=False)

    @property
    def socket(self) -> str:
        return self.settings.socket

    def client(self, **kwargs: Any) -> DaemonClient:
        return DaemonClient(self.socket, **kwargs)

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        """Run ``coro`` in the daemon's event loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def connect(self, timeout: float = 10) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(self.socket)
        return sock

    def exchange(self, data: bytes, *, timeout: float = 10, half_close: bool = False) -> bytes:
        """Send ``data``, then read until the daemon closes the connection."""
        with self.connect(timeout) as sock:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
            return read_all(sock)

    def stats(self) -> dict[str, str]:
        """STATS as ``{first word: rest of line}``."""
        text = self.exchange(b"zSTATS\0").rstrip(b"\0").decode()
        out: dict[str, str] = {}
        for line in text.splitlines():
            key, _, rest = line.partition(":")
            if rest:
                out.setdefault(key.strip(), rest.strip())
        return out

    def worker_pids(self) -> list[int]:
        gen = self.server.pool.current
        return [w.pid for w in gen.workers] if gen else []

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        if not self.server._closed.is_set():
            self.call(self.server.shutdown(), timeout=120)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        shutil.rmtree(self.folder, ignore_errors=True)


def read_all(sock: socket.socket) -> bytes:
    out = bytearray()
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        out += data
    return bytes(out)


def start_daemon(
    *, real: bool = False, engine: EngineSettings | None = None, **overrides: Any
) -> RunningDaemon:
    _export_tests_path()
    folder = Path(tempfile.mkdtemp(prefix="mwd-"))
    values: dict[str, Any] = {
        "engine": engine or EngineSettings(bundled=True, cache_dir=None),
        "socket": str(folder / "d.sock"),
        "socket_group": "",
        "pid_file": str(folder / "d.pid"),
        "workers": 2,
        "backend_factory": DEFAULT_FACTORY if real else FAKE,
        "command_timeout": 5.0,
        "read_timeout": 5.0,
        "idle_timeout": 5.0,
        "scan_timeout": 30.0,
    }
    values.update(overrides)
    settings = DaemonSettings(**values)
    loop = asyncio.new_event_loop()
    server_box: list[Server] = []
    failure: list[BaseException] = []
    ready = threading.Event()

    def main() -> None:
        asyncio.set_event_loop(loop)
        server = Server(settings)
        server_box.append(server)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            return
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    if not ready.wait(120):
        raise RuntimeError("daemon did not start")
    if failure:
        shutil.rmtree(folder, ignore_errors=True)
        raise failure[0]
    return RunningDaemon(server_box[0], loop, thread, folder, settings)


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail the test when it never is."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
