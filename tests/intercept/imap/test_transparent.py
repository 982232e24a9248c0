"""Transparent mode in a network namespace: nftables redirects a client's connections
to Dovecot's own ports to the proxies, which find Dovecot through SO_ORIGINAL_DST
alone (their ``server`` leads nowhere)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from support.dovecot import available
from support.tools import missing, require

HELPER = Path(__file__).with_name("transparent_netns.py")


def test_redirected_clients_reach_the_server_they_meant_through_the_proxies() -> None:
    why = available()
    if why:
        missing(why)
    for tool in ("unshare", "nft", "ip"):
        require(shutil.which(tool) is not None, f"{tool} is not installed (nftables, iproute2)")
    root = Path(tempfile.mkdtemp(prefix="mwtransparent-"))
    root.chmod(0o755)
    try:
        run = subprocess.run(
            ["unshare", "-n", sys.executable, str(HELPER), str(root)],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        result = json.loads(run.stdout.strip().splitlines()[-1])
        assert result == {
            "imap_clean": True,
            "imap_replaced": True,
            "pop3_replaced": True,
            "proxied": True,
        }
    finally:
        if not os.environ.get("MAILWARDEN_KEEP_TEST_ROOT"):
            shutil.rmtree(root, ignore_errors=True)
