"""Fixtures of the ZMailer content filter tests.

``zmailer_stack`` (session): the daemon (``intercept/harness.py``) with a
policy whose overrides give each outcome its own recipient.  Each test
builds its own $POSTOFFICE and starts the filter under the smtpserver
stand-in (``support/zmailer_standin.py``).

SECURITY: test-only; the daemon and filters are stopped by their PIDs.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from intercept.harness import Stack

DOMAIN = "zmailer.test"
POLICY = f"""
[network]
local_domains = ["{DOMAIN}"]

[[policy.override]]
recipients = ["tagged@{DOMAIN}"]
infected = "tag"

[[policy.override]]
recipients = ["held@{DOMAIN}"]
infected = "quarantine"

[headers]
hostname = "gw.{DOMAIN}"
"""


def filter_command(stack: Stack, *, socket: str | None = None) -> list[str]:
    """The filter as smtpserver would run it through a wrapper script."""
    return [
        sys.executable,
        "-m",
        "mailwarden",
        "zmailer-filter",
        "-c",
        str(stack.config),
        "--daemon-socket",
        socket or stack.socket,
    ]


@pytest.fixture(scope="session")
def zmailer_stack() -> Iterator[Stack]:
    root = Path(tempfile.mkdtemp(prefix="mwzm-"))
    stack = Stack.create(root / "mw", extra_toml=POLICY)
    try:
        stack.start_daemon()
        yield stack
    finally:
        stack.stop_all()
    if not os.environ.get("MAILWARDEN_KEEP_TEST_ROOT"):
        shutil.rmtree(root, ignore_errors=True)
