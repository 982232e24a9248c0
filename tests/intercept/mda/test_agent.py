"""`mailwarden mda` and `mailwarden pipe` through the resident agent (`mailwarden mda-agent`).

The agent runs as root with a store only root may write; the deliveries run
as ``nobody``, so a delivery that works went through the agent.  Every
failure between the command and the agent (agent down with ``require``,
dying mid-request, a malformed answer, no answer in time) ends in 75 with
the MDA never run; with ``auto`` a missing agent means scanning in the
delivering process.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from intercept.harness import MAILWARDEN
from intercept.mda.harness import MdaRig
from intercept.mda.mail import FROM_LINE, header_block, message
from intercept.mda.resident import (
    agent_config,
    agent_socket,
    fake_agent,
    start_mda_agent,
    stop_mda_agent,
)
from mailwarden.cli import mda_client

RCPT = "user@mda.example"
BOUNCER = "bounce@mda.example"
POLICY = f"""
[policy]
infected = "quarantine"
after_queue_reject = "bounce"

[[policy.override]]
recipients = ["{BOUNCER}"]
infected = "reject"
"""


@pytest.fixture(scope="module")
def agent(rig: MdaRig) -> Iterator[Path]:
    """The configuration of a running agent (root's store, socket 0666)."""
    config = agent_config(rig, "agent", POLICY)
    start_mda_agent(rig, config, name="mda-agent")
    try:
        yield config
    finally:
        stop_mda_agent(rig, "mda-agent")


def out_file(rig: MdaRig, name: str) -> Path:
    path = rig.out / name
    path.unlink(missing_ok=True)
    return path


def history(config: Path) -> list[dict[str, object]]:
    done = subprocess.run(
        [*MAILWARDEN, "quarantine", "list", "-c", str(config), "--json"],
        capture_output=True,
        check=True,
        timeout=120,
    )
    return list(json.loads(done.stdout or b"[]"))


# --- deliveries through the agent -------------------------------------------------------


def test_clean_mail_goes_through_the_agent_to_the_mda(rig: MdaRig, agent: Path) -> None:
    data, mid = message(from_line=True)
    target = out_file(rig, "agent-clean")
    args = ["--sender", "sender@remote.example", "-r", RCPT, "--", *rig.save_to(target)]
    done = rig.mda(args, data, config=agent)
    assert (done.returncode, done.stderr) == (0, b"")
    got = target.read_bytes()
    assert got.startswith(FROM_LINE + b"X-Virus-Scanned: mailwarden ")
    assert b"\nX-Virus-Status: Clean\n" in header_block(got)
    assert mid.encode() in got
    assert got.split(b"\n\n", 1)[1] == data.split(b"\n\n", 1)[1]
    # the store is root's, in a folder the mail user cannot enter: the agent wrote it
    store = rig.root / "agent"
    assert stat.S_IMODE(store.stat().st_mode) == 0o700 and store.stat().st_uid == 0
    assert (store / "mailwarden.sqlite3").stat().st_uid == 0


def test_infected_mail_is_quarantined_in_the_agents_store(rig: MdaRig, agent: Path) -> None:
    data, _ = message(infected=True, subject="agent quarantine")
    target = out_file(rig, "agent-quarantined")
    done = rig.mda(["-r", RCPT, "--", *rig.save_to(target)], data, config=agent)
    assert (done.returncode, done.stderr) == (0, b"")
    assert not target.exists()
    entries = [e for e in history(agent) if e["subject"] == "agent quarantine"]
    assert entries and entries[0]["verdict"]["status"] == "infected"  # type: ignore[index]


def test_the_agents_policy_bounces_with_a_one_line_reason(rig: MdaRig, agent: Path) -> None:
    data, _ = message(infected=True)
    target = out_file(rig, "agent-bounced")
    done = rig.mda(["-r", BOUNCER, "--", *rig.save_to(target)], data, config=agent)
    assert (done.returncode, done.stderr) == (77, b"5.7.1 Infected: Eicar-Test-Signature\n")
    assert not target.exists()


def test_the_mdas_own_status_and_a_missing_mda(rig: MdaRig, agent: Path) -> None:
    data, _ = message()
    done = rig.mda(
        ["-r", RCPT, "--", "/bin/sh", "-c", "cat >/dev/null; exit 73"], data, config=agent
    )
    assert done.returncode == 73
    done = rig.mda(["-r", RCPT, "--", "/usr/bin/no-such-mda"], data, config=agent)
    assert done.returncode == 75
    assert b"'/usr/bin/no-such-mda' not found" in done.stderr


def test_a_large_message_is_spooled_both_ways(rig: MdaRig, agent: Path) -> None:
    body = b"".join(b"line %07d of a long message, spooled to a file\n" % i for i in range(60_000))
    data, _ = message(body=body, from_line=True)
    assert len(data) > 2 * mda_client.SPILL
    target = out_file(rig, "agent-large")
    done = rig.mda(["-r", RCPT, "--", *rig.save_to(target)], data, config=agent)
    assert done.returncode == 0, done.stderr
    got = target.read_bytes()
    assert got.startswith(FROM_LINE)
    assert got.split(b"\n\n", 1)[1] == body


def test_pipe_through_the_agent(rig: MdaRig, agent: Path) -> None:
    data, mid = message(from_line=True)
    done = rig.pipe(["-r", RCPT], data, config=agent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(FROM_LINE + b"X-Virus-Scanned: ")
    assert mid.encode() in done.stdout
    infected, _ = message(infected=True)
    quarantined = rig.pipe(["-r", RCPT], infected, config=agent)
    assert (quarantined.returncode, quarantined.stdout) == (1, b"")
    assert quarantined.stderr == b"5.7.0 Ok: quarantined\n"
    bounced = rig.pipe(["-r", BOUNCER], infected, config=agent)
    assert (bounced.returncode, bounced.stdout) == (77, b"")


def test_empty_input_through_the_agent_keeps_the_mail(rig: MdaRig, agent: Path) -> None:
    for data in (b"", FROM_LINE):
        done = rig.mda(["-r", RCPT, "--", "/bin/true"], data, config=agent)
        assert (done.returncode, done.stderr) == (
            75,
            b"4.3.0 mailwarden mda: no message on standard input\n",
        )


def test_the_agent_refuses_a_descriptor_that_is_not_a_file(agent: Path) -> None:
    route = mda_client.agent_route(str(agent))
    assert route is not None
    read_end, write_end = os.pipe()
    try:
        sock = mda_client.connect(route)
        assert sock is not None
        try:
            mda_client.send_frame(sock, mda_client.request_fields("mda", "", [RCPT]), read_end)
            fields, fd = mda_client.receive_frame(sock)
        finally:
            sock.close()
        assert fd is None
        assert fields == [
            b"75",
            b"exit",
            b"75",
            b"4.3.0 mailwarden mda: the message did not come as a file",
        ]
    finally:
        os.close(read_end)
        os.close(write_end)


def test_garbage_does_not_stop_the_agent(rig: MdaRig, agent: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(agent_socket(agent))
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        sock.settimeout(10)
        assert sock.recv(100) == b""  # closed without an answer
    data, _ = message()
    assert rig.mda(["-r", RCPT, "--", "/bin/true"], data, config=agent).returncode == 0


def test_the_socket_gets_the_configured_mode(agent: Path) -> None:
    assert stat.S_IMODE(os.stat(agent_socket(agent)).st_mode) == 0o666


# --- without the agent ------------------------------------------------------------------


def test_auto_scans_in_the_delivering_process_when_the_agent_is_down(rig: MdaRig) -> None:
    cfg = rig.config("agent-down", f'[mda]\nagent_socket = "{rig.out / "none.sock"}"\n')
    data, _ = message()
    target = out_file(rig, "agent-down")
    done = rig.mda(["-r", RCPT, "--", *rig.save_to(target)], data, config=cfg)
    assert (done.returncode, done.stderr) == (0, b"")
    assert b"X-Virus-Status: Clean" in target.read_bytes()


def test_require_defers_when_the_agent_is_down(rig: MdaRig) -> None:
    path = rig.out / "none.sock"
    cfg = rig.config("agent-required", f'[mda]\nagent = "require"\nagent_socket = "{path}"\n')
    data, _ = message()
    target = out_file(rig, "agent-required")
    done = rig.mda(["-r", RCPT, "--", *rig.save_to(target)], data, config=cfg)
    assert done.returncode == 75
    assert (
        done.stderr == f"4.7.1 mailwarden mda: the mda agent is not answering on {path}\n".encode()
    )
    assert not target.exists()
    piped = rig.pipe(["-r", RCPT], data, config=cfg)
    assert (piped.returncode, piped.stdout) == (75, b"")


def test_off_never_asks_the_agent(rig: MdaRig, agent: Path) -> None:
    # the agent's socket, but scanning in this process: the mail user cannot write
    # the agent's store, so the delivery defers
    text = agent.read_text().replace("[mda]\n", '[mda]\nagent = "off"\n', 1)
    off = rig.root / "agent-off.toml"
    off.write_text(text)
    off.chmod(0o644)
    data, _ = message()
    done = rig.mda(["-r", RCPT, "--", "/bin/true"], data, config=off)
    assert done.returncode == 75
    assert done.stderr.startswith(b"4.3.0 mailwarden mda: internal error: ")


# --- a misbehaving agent: the MTA keeps the mail ------------------------------------------


def _read_request(conn: socket.socket) -> None:
    conn.settimeout(10)
    conn.recv(65536)


def _dies(conn: socket.socket) -> None:
    _read_request(conn)  # and closes without a word


def _garbage(conn: socket.socket) -> None:
    _read_request(conn)
    conn.sendall(b"11:not a frame")


def _deliver_without_a_copy(conn: socket.socket) -> None:
    _read_request(conn)
    conn.sendall(mda_client.frame(mda_client.reply_fields(0, True, 75, "")))


def _silent(conn: socket.socket) -> None:
    _read_request(conn)
    time.sleep(4)


@pytest.mark.parametrize(
    ("behaviour", "said"),
    [
        (_dies, b"4.3.0 mailwarden mda: the mda agent failed: connection closed"),
        (_garbage, b"4.3.0 mailwarden mda: the mda agent failed: not an mda agent frame"),
        (_deliver_without_a_copy, b"4.3.0 mailwarden mda: malformed answer from the mda agent"),
        (_silent, b"4.3.0 mailwarden mda: no answer from the mda agent in time"),
    ],
    ids=["dies", "garbage", "no-copy", "timeout"],
)
def test_a_failing_agent_defers_and_the_mda_never_runs(
    rig: MdaRig, behaviour: object, said: bytes
) -> None:
    path = rig.out / "fake-agent.sock"
    cfg = rig.config(
        "fake-agent", f'[mda]\nagent_socket = "{path}"\nagent_timeout = 1.5\nexit_tempfail = 75\n'
    )
    data, _ = message()
    target = out_file(rig, "fake-agent")
    with fake_agent(path, behaviour):  # type: ignore[arg-type]
        done = rig.mda(["-r", RCPT, "--", *rig.save_to(target)], data, config=cfg)
    assert done.returncode == 75, done.stderr
    assert done.stderr.startswith(said), done.stderr
    assert done.stderr.count(b"\n") == 1
    assert not target.exists()
