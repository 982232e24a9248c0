"""Fixtures of the Exim tests: Debian's Exim (unpacked, ``support/exim.py``) and our daemon.

``exim_rig`` (session): the daemon listening on its unix socket and on TCP,
a sink for delivered mail, and :meth:`EximRig.instance` to start Exim
instances with their own configuration (stopped at the end).

``scanner_link``: a symlink the tests point ``av_scanner`` at: to the
daemon's socket (up) or to nothing (down), without restarting anything.

Skips without root or when Exim cannot be unpacked or run (fails under CI).

SECURITY: test-only; every process is stopped by its PID.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from intercept.harness import Stack, free_port
from support.exim import EximInstance, require_exim_root
from support.smtp_sink import Sink, smtp_sink

DOMAIN = "exim.test"


@dataclass
class EximRig:
    root: Path
    exim: Path
    stack: Stack
    sink: Sink
    sink_port: int
    tcp_port: int
    instances: list[EximInstance] = field(default_factory=list)

    def instance(self, name: str, **options: object) -> EximInstance:
        ex = EximInstance.create(
            self.root / name,
            self.exim,
            port=free_port(),
            relay_port=self.sink_port,
            **options,  # type: ignore[arg-type]
        )
        self.instances.append(ex)
        ex.start()
        return ex

    def delivered(self, mid: str) -> list[bytes]:
        return [m.data for m in self.sink.messages if mid.encode() in m.data]


@pytest.fixture(scope="session")
def exim_rig() -> Iterator[EximRig]:
    exim = require_exim_root()
    root = Path(tempfile.mkdtemp(prefix="mwexim-"))
    root.chmod(0o755)
    tcp_port = free_port()
    stack = Stack.create(root / "mw")
    text = stack.config.read_text()
    # Exim asks the daemon as Debian-exim: the socket must be open to it
    daemon = f'[daemon]\ntcp = "127.0.0.1:{tcp_port}"\nsocket_mode = "0666"\n'
    stack.config.write_text(text.replace("[daemon]\n", daemon, 1))
    (root / "mw").chmod(0o755)
    with smtp_sink() as (sink, sink_port):
        rig = EximRig(root, exim, stack, sink, sink_port, tcp_port)
        try:
            stack.start_daemon()
            yield rig
        finally:
            for ex in rig.instances:
                ex.stop()
            stack.stop_all()
    if not os.environ.get("MAILWARDEN_KEEP_TEST_ROOT"):
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def scanner_link(exim_rig: EximRig) -> Iterator[Path]:
    # below the rig's root, which Debian-exim may enter (pytest's tmp_path is 0700)
    folder = Path(tempfile.mkdtemp(prefix="link-", dir=exim_rig.root))
    folder.chmod(0o755)
    link = folder / "scanner.sock"
    link.symlink_to(exim_rig.stack.socket)
    yield link


def point(link: Path, target: str | Path) -> None:
    link.unlink()
    link.symlink_to(target)
