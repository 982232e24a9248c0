"""The mda agent in this process, with a stand-in scanner: its answers to good and bad
requests, its bounds, its socket.  (test_agent.py runs the real command against the
real daemon.)"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from mailwarden.cli import mda_client
from mailwarden.config import load_config
from mailwarden.intercept.mda import AgentSettings, MdaAgent, start_agent
from mailwarden.message import Envelope
from mailwarden.verdict import Finding, Status, Verdict

EICAR = Verdict(Status.INFECTED, (Finding("Eicar-Test-Signature", "1/eicar.com", "clamav"),))
MESSAGE = b"From s@x  Fri Nov 27 12:00:00 2026\nSubject: hi\n\nbody\n"


class Scanner:
    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        self.seen: list[tuple[bytes, Envelope | None]] = []

    async def scan_bytes(
        self, data: bytes | memoryview, envelope: Envelope | None = None
    ) -> Verdict:
        self.seen.append((bytes(data), envelope))
        return self.verdict


def configure(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "mw.toml"
    path.write_text(
        f'[store]\ndatabase = "{tmp_path}/store/db.sqlite3"\nspool_dir = "{tmp_path}/store/q"\n'
        f'[daemon]\nsocket = "{tmp_path}/d.sock"\nstream_max_length = 4096\n'
        f'[release]\nsecret_file = "{tmp_path}/release.key"\n'
        f'[mda]\nagent_socket = "{tmp_path}/a.sock"\nagent_socket_group = ""\n{extra}'
    )
    return path


def ask(path: str, fields: list[bytes], fd: int | None) -> tuple[list[bytes], bytes | None]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    try:
        sock.connect(path)
        mda_client.send_frame(sock, fields, fd)
        answer, copy = mda_client.receive_frame(sock)
    finally:
        sock.close()
    if copy is None:
        return answer, None
    with os.fdopen(copy, "rb") as fh:
        return answer, fh.read()


def memfile(data: bytes) -> int:
    fd = os.memfd_create("test")
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


Body = Callable[[MdaAgent, str], Coroutine[Any, Any, None]]


def with_agent(tmp_path: Path, verdict: Verdict, body: Body, extra: str = "") -> Scanner:
    config = load_config(configure(tmp_path, extra))
    scanner = Scanner(verdict)

    async def main() -> None:
        agent = await start_agent(AgentSettings.from_config(config), config, scanner=scanner)
        try:
            await body(agent, agent.address)
        finally:
            await agent.stop()

    asyncio.run(main())
    return scanner


def test_a_clean_message_comes_back_tagged_with_its_from_line(tmp_path: Path) -> None:
    async def body(_agent: MdaAgent, path: str) -> None:
        fd = memfile(MESSAGE)
        fields = mda_client.request_fields("mda", "s@x", ["r@y"])
        answer, copy = await asyncio.to_thread(ask, path, fields, fd)
        os.close(fd)
        assert answer == [b"0", b"deliver", b"75", b""]
        assert copy is not None
        assert copy.startswith(b"From s@x  Fri Nov 27 12:00:00 2026\nX-Virus-Scanned: ")
        assert copy.endswith(b"Subject: hi\n\nbody\n")

    scanner = with_agent(tmp_path, Verdict(Status.CLEAN), body)
    ((scanned, envelope),) = scanner.seen
    assert scanned == b"Subject: hi\n\nbody\n"  # the From_ line is not scanned
    assert envelope is not None and envelope.recipients == ("r@y",)


def test_refusals_use_the_mda_and_pipe_codes(tmp_path: Path) -> None:
    async def body(_agent: MdaAgent, path: str) -> None:
        for verb, code in (("mda", b"0"), ("pipe", b"1")):
            fd = memfile(MESSAGE)
            fields = mda_client.request_fields(verb, "s@x", ["r@y"])
            answer, copy = await asyncio.to_thread(ask, path, fields, fd)
            os.close(fd)
            assert copy is None
            assert answer[:3] == [code, b"exit", b"75"], verb

    with_agent(tmp_path, EICAR, body, '[policy]\ninfected = "quarantine"\n')


@pytest.mark.parametrize(
    ("fields", "descriptor", "line"),
    [
        ([b"rm", b"s@x"], "file", b"4.3.0 mailwarden mda: malformed request to the mda agent"),
        ([b"mda"], "file", b"4.3.0 mailwarden mda: malformed request to the mda agent"),
        (
            [b"mda", b"s@x", b"r@y"],
            None,
            b"4.3.0 mailwarden mda: the message did not come as a file",
        ),
        ([b"pipe", b"s@x"], "pipe", b"4.3.0 mailwarden pipe: the message did not come as a file"),
        ([b"mda", b"s@x"], "large", b"4.3.4 mailwarden mda: message of 9000 bytes is larger"),
        ([b"mda", b"s@x"], "empty", b"4.3.0 mailwarden mda: no message on standard input"),
    ],
)
def test_bad_requests_are_deferred(
    tmp_path: Path, fields: list[bytes], descriptor: str | None, line: bytes
) -> None:
    async def body(_agent: MdaAgent, path: str) -> None:
        fds: list[int] = []
        if descriptor == "file":
            fds = [memfile(MESSAGE)]
        elif descriptor == "pipe":
            fds = list(os.pipe())
        elif descriptor == "large":
            fds = [memfile(b"x" * 9000)]
        elif descriptor == "empty":
            fds = [memfile(b"")]
        try:
            answer, copy = await asyncio.to_thread(ask, path, fields, fds[0] if fds else None)
        finally:
            for fd in fds:
                os.close(fd)
        assert copy is None
        assert answer[:3] == [b"75", b"exit", b"75"]
        assert answer[3].startswith(line), answer[3]

    scanner = with_agent(tmp_path, Verdict(Status.CLEAN), body)
    assert scanner.seen == []


def test_the_socket_is_created_with_its_mode_and_removed(tmp_path: Path) -> None:
    async def body(agent: MdaAgent, path: str) -> None:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
        assert stat.S_ISSOCK(os.stat(path).st_mode)

    with_agent(tmp_path, Verdict(Status.CLEAN), body, 'agent_socket_mode = "0640"\n')
    assert not (tmp_path / "a.sock").exists()


def test_a_second_agent_does_not_take_over_a_live_socket(tmp_path: Path) -> None:
    async def body(_agent: MdaAgent, _path: str) -> None:
        config = load_config(tmp_path / "mw.toml")
        with pytest.raises(OSError, match="in use by a running mda agent"):
            await start_agent(AgentSettings.from_config(config), config, scanner=Scanner(EICAR))

    with_agent(tmp_path, Verdict(Status.CLEAN), body)


def test_a_file_in_the_sockets_place_is_not_removed(tmp_path: Path) -> None:
    (tmp_path / "a.sock").write_text("not a socket")
    config = load_config(configure(tmp_path))

    async def main() -> None:
        await start_agent(AgentSettings.from_config(config), config, scanner=Scanner(EICAR))

    with pytest.raises(OSError, match="not a socket"):
        asyncio.run(main())
    assert (tmp_path / "a.sock").read_text() == "not a socket"
