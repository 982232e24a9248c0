"""``mailwarden serve`` with the smtp-filter: mail sent with swaks arrives tagged in a
Maildir or is quarantined, and the agent is restarted, given up on and retried.

The same setup as the quick start: no MTA, the filter delivers into a local
Maildir, everything runs as real processes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from serve.harness import ServeRun, free_port, swaks

Start = Callable[..., ServeRun]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def port() -> int:
    return free_port()


def _filter(folder: Path, port: int, **serve: Any) -> dict[str, dict[str, Any]]:
    return {
        "smtp_filter": {
            "listen": f"127.0.0.1:{port}",
            "downstream": f"maildir:{folder}/Maildir",
        },
        "serve": {"agents": ["smtp-filter"], **serve},
    }


def _up(run: ServeRun, times: int = 1) -> None:
    run.wait_for(r"^mailwarden-serve: INFO smtp-filter: ready$", count=times)


def _delivered(folder: Path) -> list[bytes]:
    new = folder / "Maildir" / "new"
    return [p.read_bytes() for p in sorted(new.iterdir())] if new.is_dir() else []


def _quarantine_list(run: ServeRun) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "mailwarden", "quarantine", "list", "-c", str(run.config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_clean_mail_arrives_tagged_and_eicar_is_quarantined(
    start_serve: Start, serve_folder: Path, port: int
) -> None:
    run = start_serve(_filter(serve_folder, port))
    _up(run)
    log = run.log()
    # the agent waits for the daemon
    assert log.index("daemon: ready") < log.index("smtp-filter: started")

    clean = swaks(port, "--header", "Subject: hello", "--body", "nothing to see")
    assert "250 2.0.0 Ok: delivered" in clean, clean + run.log()
    infected = swaks(port, "--data", str(EXAMPLES / "eicar-attached.eml"))
    assert "250 2.7.0 Ok: quarantined" in infected, infected + run.log()

    (message,) = _delivered(serve_folder)
    assert b"X-Virus-Status: Clean" in message
    assert b"Subject: hello" in message
    assert "Eicar-Test-Signature" in _quarantine_list(run)
    assert run.stop() == 0
    assert run.leftovers() == []


def test_a_killed_filter_comes_back_and_delivers_again(
    start_serve: Start, serve_folder: Path, port: int
) -> None:
    run = start_serve(_filter(serve_folder, port))
    _up(run)
    daemon = run.child_pid("daemon")
    run.descendants()
    os.kill(run.child_pid("smtp-filter"), signal.SIGKILL)
    _up(run, times=2)
    assert "smtp-filter: killed by SIGKILL" in run.log()
    # the daemon was left alone
    assert run.child_pids("daemon") == [daemon]
    assert "250 2.0.0 Ok: delivered" in swaks(port, "--body", "after the crash")
    assert run.stop() == 0
    assert run.leftovers() == []


@pytest.fixture
def taken_port() -> Iterator[tuple[socket.socket, int]]:
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    yield holder, int(holder.getsockname()[1])
    holder.close()


def test_a_filter_that_cannot_start_is_given_up_on_while_the_daemon_serves(
    start_serve: Start, serve_folder: Path, taken_port: tuple[socket.socket, int]
) -> None:
    holder, port = taken_port
    run = start_serve(_filter(serve_folder, port, start_failures=2))
    run.wait_for(r"smtp-filter: failed 2 times in a row before it was ready; not restarting it")
    assert run.proc.poll() is None
    assert run.ping()

    # the port is free again: SIGHUP tries the filter once more
    holder.close()
    run.signal(signal.SIGHUP)
    run.wait_for(r"SIGHUP: trying smtp-filter again")
    _up(run)
    assert "250 2.0.0 Ok: delivered" in swaks(port, "--body", "after the fix")
    assert run.stop() == 0


def test_sigterm_stops_the_filter_before_the_daemon(
    start_serve: Start, serve_folder: Path, port: int
) -> None:
    run = start_serve(_filter(serve_folder, port))
    _up(run)
    run.descendants()
    assert run.stop() == 0
    log = run.log()
    assert log.index("smtp-filter: exit status 0") < log.index("daemon: exit status 0")
    assert run.leftovers() == []


def test_two_agents_on_one_address_is_a_config_error(
    start_serve: Start, serve_folder: Path, port: int
) -> None:
    overrides = _filter(serve_folder, port)
    overrides["smtp_proxy"] = {"listen": f"127.0.0.1:{port}"}
    overrides["serve"]["agents"] = ["smtp-filter", "smtp-proxy"]
    run = start_serve(overrides)
    assert run.wait() == 2
    assert "key 'smtp_proxy.listen': smtp-proxy and smtp-filter would both listen" in run.log()


def test_the_milter_is_ready_on_its_unix_socket_and_comes_back(
    start_serve: Start, serve_folder: Path
) -> None:
    run = start_serve(
        {
            "milter": {"socket": f"unix:{serve_folder}/milter.sock"},
            "serve": {"agents": ["milter"]},
        }
    )
    run.wait_for(r"^mailwarden-serve: INFO milter: ready$")
    run.descendants()
    os.kill(run.child_pid("milter"), signal.SIGKILL)
    run.wait_for(r"^mailwarden-serve: INFO milter: ready$", count=2)
    assert run.stop() == 0
    assert run.leftovers() == []
