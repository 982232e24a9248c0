"""Fixtures of the POP3 proxy tests: ``pop3`` (module), a private Dovecot with
seeded Maildirs, the daemon and ``mailwarden pop3-proxy`` in front of it, TLS
on both sides (``support.dovecot.proxy_rig``).

SECURITY: test-only; every process is stopped by its PID.
"""

from __future__ import annotations

from pathlib import Path

from intercept.harness import Stack
from support.dovecot import rig_fixture


def _stack(root: Path, toml: str) -> Stack:
    return Stack.create(root, extra_toml=toml)


pop3 = rig_fixture("pop3", _stack)
