"""``mailwarden serve`` runs the mda agent: `[serve] agents = ["mda-agent"]` starts it after
the daemon on ``[mda] agent_socket``, deliveries go through it, and it is restarted when it
dies.  Runs as the test's user (no other identity needed)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from intercept.harness import MAILWARDEN
from intercept.mda.mail import message
from serve.harness import ServeRun, base_toml, start_serve

READY = r"^mailwarden-serve: INFO mda-agent: ready$"


@pytest.fixture
def served() -> Iterator[ServeRun]:
    folder = Path(tempfile.mkdtemp(prefix="mwsa-"))
    toml = base_toml(
        folder,
        {
            "serve": {"agents": ["mda-agent"]},
            "mda": {
                "agent": "require",
                "agent_socket": f"{folder}/mda.sock",
                "agent_socket_group": "",
            },
        },
    )
    run = start_serve(folder, toml)
    try:
        run.wait_for(READY)
        yield run
    finally:
        run.kill_everything()
        shutil.rmtree(folder, ignore_errors=True)


def deliver(run: ServeRun, target: Path) -> subprocess.CompletedProcess[bytes]:
    data, _ = message()
    save = ["/bin/sh", "-c", 'exec cat > "$0"', str(target)]
    return subprocess.run(
        [*MAILWARDEN, "mda", "-c", str(run.config), "-r", "u@mda.example", "--", *save],
        input=data,
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_serve_starts_the_agent_and_restarts_it(served: ServeRun) -> None:
    log = served.log()
    assert log.index("daemon: ready") < log.index("mda-agent: started")
    sock = served.folder / "mda.sock"
    assert oct(os.stat(sock).st_mode & 0o777) == "0o660"
    target = served.folder / "delivered"
    done = deliver(served, target)
    assert (done.returncode, done.stderr) == (0, b""), served.log()
    assert b"X-Virus-Status: Clean" in target.read_bytes()

    os.kill(served.child_pid("mda-agent"), signal.SIGKILL)
    served.wait_for(READY, count=2)
    target.unlink()
    done = deliver(served, target)
    assert (done.returncode, done.stderr) == (0, b""), served.log()
    assert served.stop() == 0
    assert not sock.exists()
