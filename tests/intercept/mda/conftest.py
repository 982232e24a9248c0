"""Fixtures of the mda/pipe tests.

``rig`` (session): the daemon and a ``mailwarden`` launcher for the mail user
(``harness.py``), shared by every test here; tests tell their messages apart
by Message-ID and write to their own files.

Needs root (deliveries run as ``nobody``); skips without it, fails under CI.

SECURITY: test-only; the daemon is stopped by its PID.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from intercept.mda.harness import MdaRig
from support.tools import missing


@pytest.fixture(scope="session")
def rig() -> Iterator[MdaRig]:
    if os.geteuid() != 0:
        missing("the mda tests run deliveries as another user: they need root")
    root = Path(tempfile.mkdtemp(prefix="mwmda-"))
    rig = MdaRig.create(root)
    try:
        rig.stack.start_daemon()
        yield rig
    finally:
        rig.stack.stop_all()
    if not os.environ.get("MAILWARDEN_KEEP_TEST_ROOT"):
        shutil.rmtree(root, ignore_errors=True)
