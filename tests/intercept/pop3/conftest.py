"""Fixtures of the POP3 proxy tests: a private Dovecot, the daemon and the proxy.

``pop3`` (module): Dovecot from Debian with seeded Maildirs (clean messages,
EICAR ones, a tiny EICAR one) and TLS (its own CA), the mailwarden daemon,
and ``mailwarden pop3-proxy`` in front of Dovecot's POP3 port with STLS
upstream (verified against the test CA) and its own certificate towards
clients (STLS and an implicit-TLS listener).  ``bob@example.org`` has a
per-user policy: infected mail is tagged instead of replaced.

SECURITY: test-only; every process is stopped by its PID.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from intercept.harness import Stack, free_port
from support.dovecot import (
    Certs,
    DovecotInstance,
    available,
    clean_message,
    infected_message,
    make_certs,
    tiny_infected_message,
)
from support.tools import missing

PASSWORD = "secret"  # noqa: S105 - a test user of the private Dovecot
USERS = ("alice", "bob", "carol", "erin", "dave")
DOMAIN = "example.org"


def login(name: str) -> str:
    return f"{name}@{DOMAIN}"


@dataclass
class Pop3Rig:
    dovecot: DovecotInstance
    stack: Stack
    certs: Certs
    port: int
    tls_port: int

    @property
    def direct(self) -> int:
        return self.dovecot.ports["pop3"]


def seed(dovecot: DovecotInstance, user: str) -> None:
    """Mailbox order: clean 1, infected 1, clean 2, tiny infected, clean 3."""
    for i, raw in enumerate(
        [clean_message(1), infected_message(1), clean_message(2), tiny_infected_message(),
         clean_message(3, body=b"no final line end")]
    ):  # fmt: skip
        dovecot.deliver(login(user), raw, name=f"{1000 + i}.M{i}.mwtest")


@pytest.fixture(scope="module")
def pop3() -> Iterator[Pop3Rig]:
    why = available()
    if why:
        missing(why)
    root = Path(tempfile.mkdtemp(prefix="mwpop3-"))
    root.chmod(0o755)
    certs = make_certs(root / "certs")
    dovecot = DovecotInstance.create(
        root / "dovecot", users={login(u): PASSWORD for u in USERS}, certs=certs
    )
    for user in USERS:
        seed(dovecot, user)
    port, tls_port = free_port(), free_port()
    stack = Stack.create(
        root / "mw",
        extra_toml=f"""
[[policy.override]]
recipients = ["bob@{DOMAIN}"]
infected = "tag"

[pop3_proxy]
server = "127.0.0.1:{dovecot.ports["pop3"]}"
server_tls = "starttls"
server_ca_file = "{certs.ca}"
server_name = "localhost"
tls_cert = "{certs.cert}"
tls_key = "{certs.key}"
listen_tls = "127.0.0.1:{tls_port}"
hostname = "gw.{DOMAIN}"
""",
    )
    try:
        dovecot.start()
        stack.start_daemon()
        stack.start_agent("pop3", "pop3-proxy", port)
        yield Pop3Rig(dovecot, stack, certs, port, tls_port)
    finally:
        stack.stop_all()
        dovecot.stop()
    if not os.environ.get("MAILWARDEN_KEEP_TEST_ROOT"):
        shutil.rmtree(root, ignore_errors=True)
