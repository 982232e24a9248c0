"""session.py: every command over a real socket, and every kind of bad input.

The daemon runs with the fake backend (``fake_backend.py``), whose markers
make a scan infected, slow or fatal on demand.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from pathlib import Path

import pytest

from daemon.harness import RunningDaemon, read_all, wait_for
from mailwarden.daemon import protocol as p


def instream(data: bytes, prefix: bytes = b"z") -> bytes:
    return (
        prefix
        + b"INSTREAM"
        + (b"\0" if prefix == b"z" else b"\n")
        + b"".join(bytes(c) for c in p.chunks(data))
    )


# --- simple commands ----------------------------------------------------------


def test_ping_in_every_style(daemon: RunningDaemon) -> None:
    assert daemon.exchange(b"zPING\0") == b"PONG\0"
    assert daemon.exchange(b"nPING\n") == b"PONG\n"
    assert daemon.exchange(b"PING\n") == b"PONG\n"
    assert daemon.exchange(b"PING", half_close=True) == b"PONG\n"


def test_version_and_versioncommands(daemon: RunningDaemon) -> None:
    version = daemon.exchange(b"zVERSION\0")
    assert version.startswith(b"ClamAV " + p.CLAMAV_COMPAT.encode() + b"/fake-1/")
    assert version.endswith(b"\0")
    commands = daemon.exchange(b"nVERSIONCOMMANDS\n").decode()
    head, _, listed = commands.rstrip("\n").partition("| COMMANDS: ")
    assert head.encode() + b"\0" == version
    assert listed.split() == list(p.COMMANDS)


@pytest.mark.parametrize(
    ("request_", "reply"),
    [
        (b"zFOO\0", b"UNKNOWN COMMAND\0"),
        (b"nFOO\n", b"UNKNOWN COMMAND\n"),
        (b"FOO\n", b"UNKNOWN COMMAND\n"),
        (b"zPING extra\0", b"UNKNOWN COMMAND\0"),
        (b"zSCAN\0", b"UNKNOWN COMMAND\0"),
        (b"zEND\0", b"UNKNOWN COMMAND\0"),
        (b"\0", b"UNKNOWN COMMAND\n"),
        (b"z\0", b"UNKNOWN COMMAND\0"),
        (b"\xff\xfe\xfd\n", b"UNKNOWN COMMAND\n"),
        (b"zDETSTATS\0", b""),
    ],
)
def test_unknown_and_malformed_commands_get_clamds_answer(
    daemon: RunningDaemon, request_: bytes, reply: bytes
) -> None:
    assert daemon.exchange(request_) == reply
    assert daemon.exchange(b"zPING\0") == b"PONG\0"


def test_a_command_line_without_end_is_refused_and_memory_stays_bounded(
    daemon: RunningDaemon,
) -> None:
    with daemon.connect() as sock:
        sock.sendall(b"z" + b"A" * (p.MAX_COMMAND + 10))
        assert read_all(sock) == b"UNKNOWN COMMAND\0"
    assert daemon.exchange(b"zPING\0") == b"PONG\0"


# --- INSTREAM -----------------------------------------------------------------


def test_instream_clean_infected_and_newline_style(daemon: RunningDaemon) -> None:
    assert daemon.exchange(instream(b"hello")) == b"stream: OK\0"
    assert daemon.exchange(instream(b"xx EICAR xx")) == b"stream: Fake.Eicar FOUND\0"
    assert daemon.exchange(instream(b"EICAR", b"n")) == b"stream: Fake.Eicar FOUND\n"
    assert daemon.exchange(instream(b"")) == b"stream: OK\0"


def test_unofficial_and_heuristic_names_as_clamd_prints_them(daemon: RunningDaemon) -> None:
    assert daemon.exchange(instream(b"UNOFFICIAL")) == b"stream: Fake.Unofficial.UNOFFICIAL FOUND\0"
    assert (
        daemon.exchange(instream(b"HEURISTIC"))
        == b"stream: Heuristics.Fake.DoubleExtension FOUND\0"
    )


def test_unscanned_is_an_error_reply_by_default(daemon: RunningDaemon) -> None:
    reply = daemon.exchange(instream(b"UNSCANNED")).decode()
    assert reply.startswith("stream: ") and reply.endswith(" ERROR\0")
    assert "encrypted archive" in reply


def test_stream_spooled_to_a_file_scans_the_same(start_daemon) -> None:
    d = start_daemon(spool_threshold=4096)
    big = b"a" * 300_000 + b"EICAR" + b"b" * 300_000
    assert d.exchange(instream(big)) == b"stream: Fake.Eicar FOUND\0"
    assert d.exchange(instream(b"c" * 200_000)) == b"stream: OK\0"


def test_stream_over_the_limit_gets_clamds_error_and_is_closed(start_daemon) -> None:
    d = start_daemon(stream_max_length=1000)
    exact = d.exchange(instream(b"x" * 1000))
    assert exact == b"stream: OK\0"
    with d.connect() as sock:
        sock.sendall(b"zINSTREAM\0" + struct.pack(">I", 600) + b"y" * 600)
        sock.sendall(struct.pack(">I", 401))  # 1001 in all
        assert read_all(sock) == b"INSTREAM size limit exceeded. ERROR\0"
    # a single chunk that claims 4 GiB is refused before anything is read
    with d.connect() as sock:
        sock.sendall(b"zINSTREAM\0\xff\xff\xff\xff")
        assert read_all(sock) == b"INSTREAM size limit exceeded. ERROR\0"
    assert d.exchange(b"zPING\0") == b"PONG\0"


def test_a_client_that_stalls_mid_stream_is_timed_out(start_daemon) -> None:
    d = start_daemon(read_timeout=0.5)
    with d.connect() as sock:
        sock.sendall(b"zINSTREAM\0" + struct.pack(">I", 100) + b"only part")
        assert read_all(sock) == b"COMMAND READ TIMED OUT\n"
    assert d.exchange(instream(b"EICAR")) == b"stream: Fake.Eicar FOUND\0"


def test_a_client_that_never_sends_a_command_is_timed_out(start_daemon) -> None:
    d = start_daemon(command_timeout=0.5)
    with d.connect() as sock:
        assert read_all(sock) == b"COMMAND READ TIMED OUT\n"
    with d.connect() as sock:
        sock.sendall(b"zPI")
        assert read_all(sock) == b"COMMAND READ TIMED OUT\n"


def test_disconnect_mid_stream_leaves_the_daemon_serving(daemon: RunningDaemon) -> None:
    for _ in range(5):
        with daemon.connect() as sock:
            sock.sendall(b"zINSTREAM\0" + struct.pack(">I", 100_000) + b"z" * 5000)
    wait_for(lambda: daemon.stats()["CONNECTIONS"] == "1", what="connections to close")
    assert daemon.exchange(instream(b"EICAR")) == b"stream: Fake.Eicar FOUND\0"
    stats = daemon.stats()
    assert stats["QUEUE-LIMIT"].split()[2] == "0"  # no ticket leaked


def test_disconnect_mid_scan_leaves_workers_alive(daemon: RunningDaemon) -> None:
    pids = daemon.worker_pids()
    for _ in range(3):
        with daemon.connect() as sock:
            sock.sendall(instream(b"SLEEP:0.3"))
    assert daemon.exchange(instream(b"EICAR")) == b"stream: Fake.Eicar FOUND\0"
    assert daemon.worker_pids() == pids


# --- MAILSCAN -----------------------------------------------------------------


def mailscan(data: bytes, envelope: dict[str, object]) -> bytes:
    return p.command("MAILSCAN", json.dumps(envelope)) + b"".join(bytes(c) for c in p.chunks(data))


def test_mailscan_returns_the_whole_verdict_as_json(daemon: RunningDaemon) -> None:
    envelope = {"sender": "a@example.org", "recipients": ["b@example.net"], "direction": "inbound"}
    reply = daemon.exchange(mailscan(b"EICAR and HEURISTIC", envelope))
    assert reply.endswith(b"\0") and b"\n" not in reply
    data = json.loads(reply[:-1])
    assert data["status"] == "infected"
    assert data["findings"][0] == {
        "name": "Fake.Eicar",
        "part": "1/eicar.com",
        "engine": "clamav",
        "category": "infected",
        "official": True,
    }
    assert data["size"] == len(b"EICAR and HEURISTIC")
    assert {"scan", "worker", "receive", "total"} <= set(data["timings"])
    assert data["database"]["version"] == "fake-1"


def test_mailscan_reports_unscanned_with_its_reason(daemon: RunningDaemon) -> None:
    data = json.loads(daemon.exchange(mailscan(b"UNSCANNED", {}))[:-1])
    assert data["status"] == "unscanned"
    assert data["reason"] == "encrypted archive in 1/a.zip"


def test_mailscan_over_the_limit_is_an_unscanned_verdict(start_daemon) -> None:
    d = start_daemon(stream_max_length=100)
    with d.connect() as sock:
        sock.sendall(p.command("MAILSCAN", "{}") + struct.pack(">I", 200))
        data = json.loads(read_all(sock)[:-1])
    assert data["status"] == "unscanned"
    assert "stream_max_length" in data["reason"]


def test_mailscan_with_a_bad_envelope_is_an_error(daemon: RunningDaemon) -> None:
    reply = daemon.exchange(b"zMAILSCAN {not json\0")
    assert reply.startswith(b"MAILSCAN: Bad envelope") and reply.endswith(b" ERROR\0")
    reply = daemon.exchange(b'zMAILSCAN {"direction": "sideways"}\0')
    assert reply.endswith(b" ERROR\0")


# --- IDSESSION ----------------------------------------------------------------


def test_idsession_numbers_replies_and_serves_until_end(daemon: RunningDaemon) -> None:
    request = (
        b"zIDSESSION\0zPING\0" + instream(b"EICAR") + b"zVERSION\0" + instream(b"clean") + b"zEND\0"
    )
    replies = daemon.exchange(request).split(b"\0")
    assert replies[-1] == b""
    got = dict(r.split(b": ", 1) for r in replies[:-1])
    assert got[b"1"] == b"PONG"
    assert got[b"2"] == b"stream: Fake.Eicar FOUND"
    assert got[b"3"].startswith(b"ClamAV ")
    assert got[b"4"] == b"stream: OK"


def test_idsession_refuses_commands_clamd_refuses_there(daemon: RunningDaemon) -> None:
    reply = daemon.exchange(b"zIDSESSION\0zPING\0zRELOAD\0zPING\0")
    assert reply == b"1: PONG\0" + b"2: Command invalid inside IDSESSION. ERROR\0"
    assert daemon.exchange(b"zIDSESSION\0zFOO\0") == b"1: Command invalid inside IDSESSION. ERROR\0"
    assert daemon.exchange(b"zIDSESSION\0zIDSESSION\0") == (
        b"1: Command invalid inside IDSESSION. ERROR\0"
    )


def test_idle_session_times_out(start_daemon) -> None:
    d = start_daemon(idle_timeout=0.5)
    assert d.exchange(b"zIDSESSION\0zPING\0") == b"1: PONG\0COMMAND READ TIMED OUT\n"


def test_session_pending_scans_are_answered_after_end(daemon: RunningDaemon) -> None:
    reply = daemon.exchange(b"zIDSESSION\0" + instream(b"SLEEP:0.3 EICAR") + b"zEND\0")
    assert reply == b"1: stream: Fake.Eicar FOUND\0"


def test_session_size_limit_names_the_request(start_daemon) -> None:
    d = start_daemon(stream_max_length=10)
    reply = d.exchange(b"zIDSESSION\0zPING\0zINSTREAM\0" + struct.pack(">I", 11))
    assert reply == b"1: PONG\0" + b"2: INSTREAM size limit exceeded. ERROR\0"


# --- FILDES -------------------------------------------------------------------


def send_fd(sock: socket.socket, path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        socket.send_fds(sock, [b"\0"], [fd])
    finally:
        os.close(fd)


def test_fildes_scans_the_passed_file(daemon: RunningDaemon, tmp_path: Path) -> None:
    infected = tmp_path / "a.eml"
    infected.write_bytes(b"EICAR")
    with daemon.connect() as sock:
        sock.sendall(b"zFILDES\0")
        send_fd(sock, infected)
        reply = read_all(sock)
    assert reply.startswith(b"fd[") and reply.endswith(b"]: Fake.Eicar FOUND\0")


def test_fildes_in_a_session(daemon: RunningDaemon, tmp_path: Path) -> None:
    clean = tmp_path / "b.eml"
    clean.write_bytes(b"fine")
    with daemon.connect() as sock:
        sock.sendall(b"zIDSESSION\0zFILDES\0")
        send_fd(sock, clean)
        sock.sendall(b"zEND\0")
        reply = read_all(sock)
    assert reply.startswith(b"1: fd[") and reply.endswith(b"]: OK\0")


def test_fildes_without_a_descriptor(daemon: RunningDaemon) -> None:
    assert daemon.exchange(b"zFILDES\0zPING\0") == b"No file descriptor received. ERROR\0"


def test_fildes_of_something_that_is_not_a_file(daemon: RunningDaemon) -> None:
    left, right = socket.socketpair()
    with daemon.connect() as sock, left, right:
        sock.sendall(b"zFILDES\0")
        socket.send_fds(sock, [b"\0"], [left.fileno()])
        reply = read_all(sock)
    assert reply.endswith(b" ERROR\0")


# --- path scans ---------------------------------------------------------------


def tree(tmp_path: Path) -> Path:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "a.eml").write_bytes(b"fine")
    (tmp_path / "d" / "sub" / "b.eml").write_bytes(b"EICAR")
    (tmp_path / "d" / "sub" / "c.eml").write_bytes(b"EICAR HEURISTIC")
    (tmp_path / "outside.eml").write_bytes(b"EICAR")
    (tmp_path / "d" / "link.eml").symlink_to(tmp_path / "outside.eml")
    return tmp_path / "d"


def lines(reply: bytes) -> list[str]:
    return [x for x in reply.decode().split("\0") if x]


def test_scan_stops_at_the_first_infected_file(daemon: RunningDaemon, tmp_path: Path) -> None:
    top = tree(tmp_path)
    assert lines(daemon.exchange(f"zSCAN {top}\0".encode())) == [
        f"{top}/sub/b.eml: Fake.Eicar FOUND"
    ]


def test_contscan_and_multiscan_report_every_infected_file(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    top = tree(tmp_path)
    expected = [f"{top}/sub/b.eml: Fake.Eicar FOUND", f"{top}/sub/c.eml: Fake.Eicar FOUND"]
    assert lines(daemon.exchange(f"zCONTSCAN {top}\0".encode())) == expected
    assert sorted(lines(daemon.exchange(f"zMULTISCAN {top}\0".encode()))) == expected


def test_allmatchscan_reports_every_match(daemon: RunningDaemon, tmp_path: Path) -> None:
    top = tree(tmp_path)
    target = top / "sub" / "c.eml"
    assert lines(daemon.exchange(f"zALLMATCHSCAN {target}\0".encode())) == [
        f"{target}: Fake.Eicar FOUND",
        f"{target}: Heuristics.Fake.DoubleExtension FOUND",
    ]


def test_path_scan_of_clean_file_and_folder_says_ok(daemon: RunningDaemon, tmp_path: Path) -> None:
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "m.eml").write_bytes(b"fine")
    assert daemon.exchange(f"zSCAN {tmp_path}/ok\0".encode()) == f"{tmp_path}/ok: OK\0".encode()
    assert daemon.exchange(f"nSCAN {tmp_path}/ok/m.eml\n".encode()) == (
        f"{tmp_path}/ok/m.eml: OK\n".encode()
    )


def test_path_scan_errors_as_clamd_words_them(daemon: RunningDaemon) -> None:
    assert daemon.exchange(b"zSCAN /nonexistent/x\0") == (
        b"/nonexistent/x: File path check failure: No such file or directory. ERROR\0"
    )


def test_path_scans_can_be_switched_off(start_daemon, tmp_path: Path) -> None:
    d = start_daemon(path_scans=False)
    reply = d.exchange(f"zSCAN {tmp_path}\0".encode())
    assert reply.endswith(b"Path scanning disabled by configuration. ERROR\0")
    assert d.exchange(instream(b"EICAR")) == b"stream: Fake.Eicar FOUND\0"


# --- control ------------------------------------------------------------------


def test_shutdown_command_stops_the_daemon(daemon: RunningDaemon) -> None:
    assert daemon.exchange(b"zSHUTDOWN\0") == b""
    wait_for(daemon.server._closed.is_set, what="shutdown")
    assert not Path(daemon.socket).exists()
    assert not Path(daemon.settings.pid_file).exists()


def test_reload_command_answers_reloading(daemon: RunningDaemon) -> None:
    assert daemon.exchange(b"zRELOAD\0") == b"RELOADING\0"
    wait_for(lambda: daemon.stats()["RELOADS"].startswith("1 last ok"), what="reload")
    assert daemon.exchange(instream(b"EICAR")) == b"stream: Fake.Eicar FOUND\0"
