"""Fixtures of the qmail-queue tests.

``qmail`` (session): the daemon (``intercept/harness.py``) and a configuration
whose policy overrides give each outcome its own recipient; tests get their
own stand-in qmail-queue and queue folder (``support/qmail_standin.py``) from
:meth:`QmailRig.standin`.

SECURITY: test-only; the daemon is stopped by its PID.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from intercept.harness import Stack
from support.qmail_standin import write_qmail_queue

DOMAIN = "qmail.test"
POLICY = f"""
[network]
local_domains = ["{DOMAIN}"]

[[policy.override]]
recipients = ["tagged@{DOMAIN}"]
infected = "tag"

[[policy.override]]
recipients = ["held@{DOMAIN}"]
infected = "quarantine"

[[policy.override]]
recipients = ["later@{DOMAIN}"]
infected = "defer"

[headers]
hostname = "gw.{DOMAIN}"
"""


@dataclass
class QmailRig:
    stack: Stack

    def standin(self, folder: Path) -> tuple[Path, Path]:
        """(stand-in qmail-queue, its queue folder) under ``folder``."""
        queue = folder / "queue"
        return write_qmail_queue(folder / "bin" / "qmail-queue", queue), queue

    def command(
        self, real: Path | str, *, socket: str | None = None, config: Path | None = None
    ) -> list[str]:
        return [
            sys.executable,
            "-m",
            "mailwarden",
            "qmail-queue",
            "-c",
            str(config or self.stack.config),
            "--daemon-socket",
            socket or self.stack.socket,
            "--qmail-queue",
            str(real),
        ]


@pytest.fixture(scope="session")
def qmail() -> Iterator[QmailRig]:
    root = Path(tempfile.mkdtemp(prefix="mwqmail-"))
    stack = Stack.create(root / "mw", extra_toml=POLICY)
    try:
        stack.start_daemon()
        yield QmailRig(stack)
    finally:
        stack.stop_all()
    if not os.environ.get("MAILWARDEN_KEEP_TEST_ROOT"):
        shutil.rmtree(root, ignore_errors=True)
