"""Fixtures of the agent tests.

``gateway`` (session): a real Postfix from Debian (``support/postfix.py``) wired
to a real mailwarden stack (``harness.py``): the daemon, ``smtp-filter`` over
SMTP and over LMTP (Postfix content_filter), ``smtp-proxy`` (Postfix
smtpd_proxy_filter), and a sink for mail to ``remote.example``.  Shared by
every end-to-end test because starting Postfix costs seconds; tests use
distinct recipients or Message-IDs so they do not see each other's mail.

``stack`` (function): a mailwarden stack with its own daemon and no Postfix,
for tests that drive the agents with raw SMTP.

Skips without Postfix or root (fails under CI, see ``support/tools.py``).

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
from support.postfix import DOMAIN, PostfixInstance
from support.smtp_sink import Sink, smtp_sink
from support.tools import missing

POLICY = f"""
[network]
local_domains = ["{DOMAIN}"]

[policy]
outbound_infected = "tag"

[[policy.override]]
recipients = ["bob@{DOMAIN}"]
infected = "tag"

[[policy.override]]
recipients = ["carol@{DOMAIN}"]
infected = "defer"

[headers]
hostname = "gw.{DOMAIN}"

[smtp_filter]
hostname = "filter.{DOMAIN}"

[smtp_proxy]
hostname = "proxy.{DOMAIN}"
"""


@dataclass
class Gateway:
    postfix: PostfixInstance
    stack: Stack
    sink: Sink

    def port(self, name: str) -> int:
        return self.postfix.ports[name]


def _need_postfix() -> None:
    if shutil.which("postfix") is None and not Path("/usr/sbin/postfix").exists():
        missing("postfix is not installed (apt-get install postfix)")
    if os.geteuid() != 0:
        missing("a private Postfix instance needs root")


@pytest.fixture(scope="session")
def gateway() -> Iterator[Gateway]:
    _need_postfix()
    root = Path(tempfile.mkdtemp(prefix="mwgw-"))
    root.chmod(0o755)  # Postfix's users live below it
    ports = {k: free_port() for k in ("smtp", "lmtp_in", "proxied", "reinject", "f", "l", "p")}
    with smtp_sink() as (sink, relay_port):
        postfix = PostfixInstance.create(
            root / "postfix",
            smtp_port=ports["smtp"],
            filtered_lmtp_port=ports["lmtp_in"],
            proxied_port=ports["proxied"],
            reinject_port=ports["reinject"],
            filter_port=ports["f"],
            lmtp_filter_port=ports["l"],
            proxy_port=ports["p"],
            relay_port=relay_port,
        )
        release = f'\n[release]\nhost = "127.0.0.1"\nport = {ports["smtp"]}\n'
        stack = Stack.create(root / "mw", extra_toml=POLICY)
        # [release] is already in the file: point it at Postfix's filtered port
        text = stack.config.read_text().replace("[release]\n", release.lstrip("\n"), 1)
        stack.config.write_text(text)
        try:
            postfix.start()
            stack.start_daemon()
            reinject = f"127.0.0.1:{ports['reinject']}"
            stack.start_agent("filter", "smtp-filter", ports["f"], "--downstream", reinject)
            stack.start_agent(
                "filter-lmtp", "smtp-filter", ports["l"], "--downstream", reinject, "--lmtp"
            )
            stack.start_agent("proxy", "smtp-proxy", ports["p"], "--downstream", reinject)
            yield Gateway(postfix, stack, sink)
        finally:
            stack.stop_all()
            postfix.stop()
    if not os.environ.get("MAILWARDEN_KEEP_TEST_ROOT"):
        shutil.rmtree(root, ignore_errors=True)
