"""``mailwarden smtp-filter`` without Postfix: hostile and broken clients, failures downstream.

The filter runs as the CLI runs it, with small limits, in front of a
recording SMTP sink; the tests speak raw SMTP so they can send what no
well-behaved client would.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from intercept.harness import EICAR, MAILWARDEN, Stack, free_port, port_open, wait_until
from intercept.mail import make_message
from support.identity import keep_test_user
from support.smtp_sink import Sink, smtp_sink

LIMITS = """
[smtp_filter]
max_message_size = "1MiB"
spool_threshold = "64KiB"
timeout = 3.0
"""


class Client:
    """A bare SMTP client: send bytes, read replies (multi-line ones joined)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.buf = b""
        self.greeting = self.reply()

    def reply(self) -> str:
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError(f"closed; got {lines}")
                self.buf += data
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode(errors="replace"))
            if len(line) < 4 or line[3:4] != b"-":
                return "\n".join(lines)

    def cmd(self, line: str | bytes) -> str:
        self.send(line if isinstance(line, bytes) else line.encode() + b"\r\n")
        return self.reply()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()


@dataclass
class Agent:
    stack: Stack
    sink: Sink
    sink_port: int
    port: int

    def client(self) -> Client:
        c = Client(self.port)
        assert c.cmd("EHLO tester.example").startswith("250")
        return c

    def delivered(self, marker: bytes) -> list[bytes]:
        return [m.data for m in self.sink.messages if marker in m.data]


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    with smtp_sink() as (sink, sink_port):
        stack = Stack.create(Path(tempfile.mkdtemp(prefix="mwf-")), extra_toml=LIMITS)
        try:
            stack.start_daemon()
            port = free_port()
            stack.start_agent(
                "filter", "smtp-filter", port, "--downstream", f"127.0.0.1:{sink_port}"
            )
            yield Agent(stack, sink, sink_port, port)
        finally:
            stack.stop_all()


def _transaction(c: Client, rcpts: list[str], data: bytes) -> str:
    assert c.cmd("MAIL FROM:<s@remote.example>").startswith("250")
    for r in rcpts:
        assert c.cmd(f"RCPT TO:<{r}>").startswith("250")
    assert c.cmd("DATA").startswith("354")
    return c.cmd(data + b".\r\n")


def test_ehlo_announces_the_extensions(agent: Agent) -> None:
    c = Client(agent.port)
    ehlo = c.cmd("EHLO tester.example")
    for word in ("PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE 1048576", "DSN", "XFORWARD"):
        assert word in ehlo
    c.close()


def test_clean_message_is_relayed_with_headers_and_250_after_downstream(agent: Agent) -> None:
    raw, mid = make_message(sender="s@remote.example", to="u@test.example")
    c = agent.client()
    reply = _transaction(c, ["u@test.example"], raw)
    assert reply.startswith("250 2.0.0"), reply
    (data,) = agent.delivered(mid.encode())
    assert data.startswith(b"X-Virus-Scanned: mailwarden ")
    assert b"X-Virus-Status: Clean\r\n" in data
    c.close()


def test_pipelined_transactions(agent: Agent) -> None:
    raw1, mid1 = make_message(sender="s@remote.example", to="a@test.example")
    raw2, mid2 = make_message(sender="s@remote.example", to="b@test.example")
    c = agent.client()
    c.send(b"MAIL FROM:<s@remote.example>\r\nRCPT TO:<a@test.example>\r\nDATA\r\n")
    assert [c.reply()[:3] for _ in range(3)] == ["250", "250", "354"]
    c.send(raw1 + b".\r\nMAIL FROM:<s@remote.example>\r\nRCPT TO:<b@test.example>\r\nDATA\r\n")
    assert [c.reply()[:3] for _ in range(4)] == ["250", "250", "250", "354"]
    assert c.cmd(raw2 + b".\r\n").startswith("250")
    assert agent.delivered(mid1.encode()) and agent.delivered(mid2.encode())
    c.close()


def test_quit_pipelined_after_the_dot_and_a_half_close_still_get_the_reply(agent: Agent) -> None:
    # Exim's smtp transport does this when nothing else waits for the host: the reply to
    # the message is still owed, and the message must be handed on exactly once
    raw, mid = make_message(sender="s@remote.example", to="u@test.example")
    c = agent.client()
    c.send(b"MAIL FROM:<s@remote.example>\r\nRCPT TO:<u@test.example>\r\nDATA\r\n")
    assert [c.reply()[:3] for _ in range(3)] == ["250", "250", "354"]
    c.send(raw + b".\r\nQUIT\r\n")
    c.sock.shutdown(socket.SHUT_WR)
    assert c.reply().startswith("250 2.0.0")
    assert len(agent.delivered(mid.encode())) == 1
    c.close()


def test_input_ended_inside_data_closes_the_session_and_takes_nothing(agent: Agent) -> None:
    raw, mid = make_message(sender="s@remote.example", to="u@test.example")
    c = agent.client()
    c.send(b"MAIL FROM:<s@remote.example>\r\nRCPT TO:<u@test.example>\r\nDATA\r\n")
    assert [c.reply()[:3] for _ in range(3)] == ["250", "250", "354"]
    c.send(raw)
    c.sock.shutdown(socket.SHUT_WR)
    c.sock.settimeout(10)
    assert c.sock.recv(4096) == b""
    assert agent.delivered(mid.encode()) == []
    c.close()


def test_declared_size_over_the_limit_gets_552(agent: Agent) -> None:
    c = agent.client()
    assert c.cmd("MAIL FROM:<s@remote.example> SIZE=1073741824").startswith("552")
    assert c.cmd("MAIL FROM:<s@remote.example> SIZE=1000").startswith("250")
    c.close()


def test_message_over_the_limit_gets_552_and_nothing_is_delivered(agent: Agent) -> None:
    marker = b"oversized-message-marker"
    body = marker + b"\r\n" + (b"x" * 998 + b"\r\n") * 2000  # about 2 MB
    c = agent.client()
    reply = _transaction(c, ["u@test.example"], b"Subject: big\r\n\r\n" + body)
    assert reply.startswith("552"), reply
    assert not agent.delivered(marker)
    # the session is still in step
    assert c.cmd("RSET").startswith("250")
    assert c.cmd("NOOP").startswith("250")
    c.close()


def test_bare_lf_line_ends_become_crlf(agent: Agent) -> None:
    c = agent.client()
    data = b"Subject: bare lf\nX-Marker: bare-lf-marker\n\nline one\nline two\n"
    reply = _transaction(c, ["u@test.example"], data + b"\r\n")
    assert reply.startswith("250"), reply
    (got,) = agent.delivered(b"bare-lf-marker")
    assert b"line one\r\nline two\r\n" in got
    assert b"\n" not in got.replace(b"\r\n", b"")
    c.close()


def test_a_dot_line_ended_by_bare_lf_does_not_end_the_data(agent: Agent) -> None:
    c = agent.client()
    data = b"Subject: smuggle\r\nX-Marker: smuggle-marker\r\n\r\nbefore\r\n.\nMAIL FROM:<x@y>\r\n"
    reply = _transaction(c, ["u@test.example"], data)
    assert reply.startswith("250"), reply
    (got,) = agent.delivered(b"smuggle-marker")
    assert b"MAIL FROM:<x@y>" in got  # stayed inside the one message
    c.close()


def test_nul_bytes_and_8bit_pass_through(agent: Agent) -> None:
    c = agent.client()
    long_line = "größe ".encode() * 100
    data = b"Subject: nul\r\nX-Marker: nul-marker\r\n\r\na\x00b\r\n" + long_line + b"\r\n"
    reply = _transaction(c, ["u@test.example"], data)
    assert reply.startswith("250"), reply
    (got,) = agent.delivered(b"nul-marker")
    assert b"a\x00b\r\n" in got
    assert long_line in got
    c.close()


def test_thousand_recipients_and_one_more(agent: Agent) -> None:
    c = agent.client()
    assert c.cmd("MAIL FROM:<s@remote.example>").startswith("250")
    rcpts = [f"u{n}@test.example" for n in range(1000)]
    c.send(b"".join(f"RCPT TO:<{r}>\r\n".encode() for r in rcpts))
    assert all(c.reply().startswith("250") for _ in rcpts)
    assert c.cmd("RCPT TO:<one-more@test.example>").startswith("452")
    assert c.cmd("DATA").startswith("354")
    assert c.cmd(b"Subject: many\r\nX-Marker: many-marker\r\n\r\nhi\r\n.\r\n").startswith("250")
    (msg,) = [m for m in agent.sink.messages if b"many-marker" in m.data]
    assert len(msg.recipients) == 1000
    c.close()


def test_command_line_over_512_bytes_gets_500(agent: Agent) -> None:
    c = agent.client()
    assert c.cmd("NOOP " + "z" * 600).startswith("500")
    assert c.cmd("MAIL FROM:<" + "a" * 700 + "@remote.example>").startswith("500")
    assert c.cmd("NOOP").startswith("250")
    c.close()


def test_stalled_session_is_closed_and_nothing_half_delivered(agent: Agent) -> None:
    c = agent.client()
    assert c.cmd("MAIL FROM:<s@remote.example>").startswith("250")
    assert c.cmd("RCPT TO:<u@test.example>").startswith("250")
    assert c.cmd("DATA").startswith("354")
    c.send(b"Subject: stalled\r\nX-Marker: stall-marker\r\n\r\nhalf a mess")
    c.sock.settimeout(30)
    assert c.sock.recv(100) == b""  # the filter hung up after its timeout
    c.close()
    assert not agent.delivered(b"stall-marker")


def test_downstream_refusal_is_passed_back(agent: Agent) -> None:
    agent.sink.refuse.add("nobody@test.example")
    try:
        c = agent.client()
        reply = _transaction(c, ["nobody@test.example"], b"Subject: x\r\n\r\nrefused\r\n")
        assert reply.startswith("550"), reply
        c.close()
    finally:
        agent.sink.refuse.discard("nobody@test.example")


def test_downstream_down_is_a_temporary_failure(agent: Agent) -> None:
    port = free_port()
    agent.stack.start_agent("filter-nodown", "smtp-filter", port, "--downstream", "127.0.0.1:1")
    c = Client(port)
    c.cmd("EHLO tester.example")
    reply = _transaction(c, ["u@test.example"], b"Subject: x\r\n\r\nnowhere\r\n")
    assert reply.startswith("451"), reply
    c.close()


def test_daemon_unreachable_is_a_temporary_failure(agent: Agent) -> None:
    port = free_port()
    agent.stack.procs["nodaemon"] = agent.stack._spawn(
        "nodaemon",
        [
            "smtp-filter",
            "-c",
            str(agent.stack.config),
            "--listen",
            f"127.0.0.1:{port}",
            "--daemon-socket",
            str(agent.stack.root / "no-such.sock"),
            "--downstream",
            f"127.0.0.1:{agent.sink_port}",
        ],
    )
    wait_until(lambda: port_open(port), 30, "the filter")
    c = Client(port)
    c.cmd("EHLO tester.example")
    reply = _transaction(c, ["u@test.example"], b"Subject: x\r\nX-Marker: nodaemon\r\n\r\nx\r\n")
    assert reply.startswith("451 4.7.1"), reply
    assert not agent.delivered(b"nodaemon")
    c.close()


def test_infected_mail_is_quarantined_after_the_queue(agent: Agent) -> None:
    raw, mid = make_message(sender="s@remote.example", to="u@test.example", attachment=EICAR)
    c = agent.client()
    reply = _transaction(c, ["u@test.example"], raw)
    assert reply.startswith("250 2.7.0"), reply
    assert not agent.delivered(mid.encode())
    listing = agent.stack.cli("quarantine", "list").stdout
    assert "Eicar" in listing
    c.close()


def test_lmtp_mode_replies_per_recipient(agent: Agent) -> None:
    port = free_port()
    down = f"127.0.0.1:{agent.sink_port}"
    agent.stack.start_agent("filter-lmtp", "smtp-filter", port, "--downstream", down, "--lmtp")
    agent.sink.refuse.add("gone@test.example")
    try:
        c = Client(port)
        assert c.cmd("EHLO x").startswith("500")
        assert c.cmd("LHLO tester.example").startswith("250")
        assert c.cmd("MAIL FROM:<s@remote.example>").startswith("250")
        assert c.cmd("RCPT TO:<here@test.example>").startswith("250")
        assert c.cmd("RCPT TO:<gone@test.example>").startswith("250")
        assert c.cmd("DATA").startswith("354")
        c.send(b"Subject: lmtp\r\nX-Marker: lmtp-marker\r\n\r\nhi\r\n.\r\n")
        assert c.reply().startswith("250")
        assert c.reply().startswith("550")
        c.close()
    finally:
        agent.sink.refuse.discard("gone@test.example")


def test_maildir_downstream_with_swaks(agent: Agent, tmp_path: Path) -> None:
    import shutil

    if shutil.which("swaks") is None:
        pytest.skip("swaks is not installed")
    port = free_port()
    agent.stack.start_agent(
        "filter-maildir", "smtp-filter", port, "--downstream", f"maildir:{tmp_path / 'box'}"
    )
    out = subprocess.run(
        [
            "swaks",
            "--server",
            f"127.0.0.1:{port}",
            "--to",
            "me@test.example",
            "--from",
            "you@remote.example",
            "--header",
            "Subject: from swaks",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "250 2.0.0 Ok: delivered as" in out.stdout, out.stdout
    (path,) = list((tmp_path / "box" / "new").iterdir())
    text = path.read_bytes()
    assert text.startswith(b"Return-Path: <you@remote.example>\nX-Original-To: me@test.example\n")
    assert b"X-Virus-Status: Clean\n" in text
    assert b"\r\n" not in text


def test_config_error_stops_the_agent_with_file_line_and_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[smtp_filter]\nlmtp = false\nlisten = "nowhere"\n')
    result = subprocess.run(
        [*MAILWARDEN, "smtp-filter", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert f"{config}:3" in result.stderr
    assert "smtp_filter.listen" in result.stderr or "listen" in result.stderr


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_huge_message_without_size_keeps_memory_bounded(agent: Agent) -> None:
    # 256 MiB against a 1 MiB limit: read through and dropped, never held
    pid = agent.stack.procs["filter"].popen.pid
    c = agent.client()
    assert c.cmd("MAIL FROM:<s@remote.example>").startswith("250")
    assert c.cmd("RCPT TO:<u@test.example>").startswith("250")
    assert c.cmd("DATA").startswith("354")
    c.send(b"Subject: huge\r\nX-Marker: huge-marker\r\n\r\n")
    chunk = (b"h" * 1022 + b"\r\n") * 1024
    for _ in range(256):
        c.send(chunk)
    assert c.cmd(b".\r\n").startswith("552")
    assert not agent.delivered(b"huge-marker")
    peak = _peak_rss_kib(pid)
    assert peak < 128 * 1024
    c.close()


def test_a_message_over_the_spool_threshold_is_delivered_intact(agent: Agent) -> None:
    body = b"".join(b"%06d " % n + b"s" * 90 + b"\r\n" for n in range(8000))  # ~780 KB
    c = agent.client()
    reply = _transaction(c, ["u@test.example"], b"X-Marker: spill-marker\r\n\r\n" + body)
    assert reply.startswith("250"), reply
    (got,) = agent.delivered(b"spill-marker")
    assert got.endswith(body)
    c.close()


def test_sighup_reloads_the_policy(agent: Agent, tmp_path: Path) -> None:
    import os
    import signal

    config = tmp_path / "own.toml"
    config.write_text(agent.stack.config.read_text())
    keep_test_user(config)
    port = free_port()
    proc = agent.stack._spawn(
        "filter-hup",
        [
            "smtp-filter",
            "-c",
            str(config),
            "--listen",
            f"127.0.0.1:{port}",
            "--daemon-socket",
            agent.stack.socket,
            "--downstream",
            f"127.0.0.1:{agent.sink_port}",
        ],
    )
    wait_until(lambda: port_open(port), 30, "the filter")

    def send_eicar() -> str:
        raw, _ = make_message(sender="s@remote.example", to="u@test.example", attachment=EICAR)
        c = Client(port)
        c.cmd("EHLO tester.example")
        reply = _transaction(c, ["u@test.example"], raw)
        c.close()
        return reply

    assert send_eicar().startswith("250 2.7.0")  # quarantined
    config.write_text(config.read_text() + '\n[policy]\ninfected = "tag"\n')
    os.kill(proc.popen.pid, signal.SIGHUP)
    wait_until(lambda: "policy reloaded" in proc.output(), 30, "the reload")
    assert send_eicar().startswith("250 2.0.0")  # delivered, tagged
    assert proc.popen.poll() is None
