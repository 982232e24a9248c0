"""Fixtures of the IMAP proxy tests: ``imap`` (module), a private Dovecot with
seeded Maildirs, the daemon and ``mailwarden imap-proxy`` in front of it, TLS
on both sides (``support.dovecot.proxy_rig``).

SECURITY: test-only; every process is stopped by its PID.
"""

from __future__ import annotations

from pathlib import Path

from intercept.harness import Stack
from support.dovecot import rig_fixture


def _stack(root: Path, toml: str) -> Stack:
    return Stack.create(root, extra_toml=toml)


imap = rig_fixture("imap", _stack)
