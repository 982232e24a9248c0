"""Hostile or broken MTAs: truncated and oversized packets, unknown commands, aborts,
disconnects in the middle of a message, floods, fuzzed dialogues.  The milter must
not crash, must leak no temporary file, and must say what happened in one log line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intercept.harness import EICAR
from intercept.mail import make_message
from intercept.milter.client import MilterClient
from intercept.milter.conftest import run_milter
from mailwarden.intercept.milter import MilterServer
from mailwarden.intercept.milter import protocol as p

CLEAN, _ = make_message(sender="x@remote.example", to="alice@test.example")


def _deleted_files() -> int:
    """Open files of this process whose name is gone: spilled spools are such files."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").endswith("(deleted)"):
                count += 1
        except OSError:
            continue
    return count


async def _still_works(address: str) -> None:
    async with await MilterClient.open(address) as mta:
        await mta.negotiate()
        final, _ = await mta.send_message(CLEAN)
        assert final == p.Reply.ACCEPT


async def _closed(mta: MilterClient) -> bool:
    """True when the milter closed the connection (EOF within the time limit)."""
    try:
        data = await asyncio.wait_for(mta.reader.read(), 10)
    except (ConnectionError, TimeoutError):
        return True
    return data == b""


async def _raw(address: str, data: bytes, *, negotiate: bool = True) -> bool:
    async with await MilterClient.open(address) as mta:
        if negotiate:
            await mta.negotiate()
        mta.writer.write(data)
        await mta.writer.drain()
        mta.writer.write_eof()
        return await _closed(mta)


@pytest.mark.parametrize(
    ("data", "negotiate", "logged"),
    [
        (b"\0\0\0\x40Lsubject", True, "connection closed inside a packet"),
        (b"\0\0", True, "connection closed inside a packet"),
        (struct.pack(">I", 50_000_000) + b"B", True, "over the limit"),
        (b"\0\0\0\0", True, "length 0"),
        (p.encode(b"Z", b"what"), True, "unknown command b'Z'"),
        (p.encode(p.Command.MAIL, b"<a@b>\0"), False, "MAIL before OPTNEG"),
        (p.encode(p.Command.HEADER, b"no-terminator"), True, "missing NUL"),
        (p.encode(p.Command.OPTNEG, b"\0\0\0\1" + b"\0" * 8), False, "version 1"),
    ],
)
def test_malformed_input_closes_the_session_with_a_log_line(
    data: bytes, negotiate: bool, logged: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(address: str, server: MilterServer) -> bool:
        closed = await _raw(address, data, negotiate=negotiate)
        await _still_works(address)
        return closed

    with caplog.at_level(logging.WARNING, logger="mailwarden.intercept.milter"):
        assert run_milter(scenario, tmp_path)
    assert logged in caplog.text


def test_disconnect_in_the_middle_of_a_spooled_message_leaks_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = _deleted_files()

    async def scenario(address: str, server: MilterServer) -> int:
        async with await MilterClient.open(address) as mta:
            await mta.negotiate()
            mta.macro(b"M", {"i": "4HALFWAY"})
            await mta.command(p.Command.MAIL, b"<a@remote.example>\0")
            await mta.command(p.Command.RCPT, b"<alice@test.example>\0")
            await mta.command(p.Command.EOH)
            for _ in range(8):  # 512 KiB: past the spool threshold
                await mta.command(p.Command.BODY, b"x" * 65535)
            await mta.command(p.Command.HELO, b"x\0")  # a no-op round trip...
            mta.send(p.Command.MACRO, b"Cj\0x\0")
            # ...then wait until the spool is a file before going away
            for _ in range(200):
                if _deleted_files() > before:
                    break
                await asyncio.sleep(0.02)
            spilled = _deleted_files()
        while server.active:
            await asyncio.sleep(0.02)
        await _still_works(address)
        return spilled

    with caplog.at_level(logging.WARNING, logger="mailwarden.intercept.milter"):
        spilled = run_milter(scenario, tmp_path, spool_threshold=64 * 1024)
    assert spilled > before  # the test did reach the temporary file
    assert _deleted_files() == before
    assert "queue id 4HALFWAY" in caplog.text and "nothing kept" in caplog.text


def test_abort_in_the_middle_of_a_body_frees_the_spool(tmp_path: Path) -> None:
    before = _deleted_files()

    async def scenario(address: str, server: MilterServer) -> bytes:
        async with await MilterClient.open(address) as mta:
            await mta.negotiate()
            await mta.command(p.Command.MAIL, b"<a@remote.example>\0")
            await mta.command(p.Command.EOH)
            for _ in range(4):
                await mta.command(p.Command.BODY, EICAR + b"x" * 60000)
            mta.send(p.Command.ABORT)
            final, _ = await mta.send_message(CLEAN, connect=False)
            return final

    assert run_milter(scenario, tmp_path, spool_threshold=64 * 1024) == p.Reply.ACCEPT
    assert _deleted_files() == before


def test_a_connection_flood_is_refused_past_max_sessions_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(address: str, server: MilterServer) -> int:
        held = [await MilterClient.open(address) for _ in range(5)]
        for mta in held:
            await mta.negotiate()  # all five are being served
        flood = [await MilterClient.open(address) for _ in range(40)]
        refused = sum([await _closed(m) for m in flood])
        for mta in flood + held:
            await mta.__aexit__(None, None, None)
        while server.active:
            await asyncio.sleep(0.02)
        await _still_works(address)
        return refused

    with caplog.at_level(logging.WARNING, logger="mailwarden.intercept.milter"):
        refused = run_milter(scenario, tmp_path, max_sessions=5)
    assert refused == 40
    assert caplog.text.count("refusing new connections") == 1
    assert "40 were refused" in caplog.text


_COMMANDS = [c.value for c in p.Command if c is not p.Command.QUIT] + [b"Z"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    items=st.lists(
        st.tuples(st.sampled_from(_COMMANDS), st.binary(max_size=30)),
        min_size=1,
        max_size=12,
    )
)
def test_fuzz_dialogues_never_take_the_milter_down(
    items: list[tuple[bytes, bytes]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp_path = tmp_path_factory.mktemp("fuzz")

    async def scenario(address: str, server: MilterServer) -> None:
        async with await MilterClient.open(address) as mta:
            await mta.negotiate()
            for command, data in items:
                mta.send(command, data)
            mta.writer.write_eof()
            # whatever it answered, it must end the session cleanly
            while await asyncio.wait_for(mta.reader.read(65536), 20):
                pass
        while server.active:
            await asyncio.sleep(0.01)
        await _still_works(address)

    run_milter(scenario, tmp_path)


def test_a_silent_mta_is_disconnected_after_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(address: str, server: MilterServer) -> bool:
        async with await MilterClient.open(address) as mta:
            await mta.negotiate()
            await mta.command(p.Command.MAIL, b"<a@remote.example>\0")
            closed = await _closed(mta)  # sends nothing more: the milter hangs up
        await _still_works(address)
        return closed

    with caplog.at_level(logging.WARNING, logger="mailwarden.intercept.milter"):
        assert run_milter(scenario, tmp_path, timeout=2.0)
    assert "silent for 2s in the middle of a message" in caplog.text
