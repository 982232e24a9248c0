"""Fuzzing the clamd protocol: the framer, the command parser, and a live daemon.

The pure layer (``daemon/protocol.py``) gets any byte stream cut at any points:
framing must not depend on how the bytes arrived, and only ``CommandTooLong``
may escape.  The live layer sends generated dialogues to a real daemon (its
scanner is the test backend, so inputs are cheap): well- and ill-formed
commands of all three styles, chunk headers that lie about their length,
IDSESSION, stray bytes; then half-closes.  Property: the daemon answers and
closes within its time-outs, its reply is bounded, nothing is logged as an
unexpected exception, and it still answers PING afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.harness import RunningDaemon, read_all, start_daemon
from fuzz.budget import fuzz
from mailwarden.daemon import protocol as p

# --- the pure layer ---------------------------------------------------------------

_stream = st.lists(
    st.one_of(
        st.sampled_from([b"zPING\0", b"nVERSION\n", b"PING\n", b"zINSTREAM\0", b"\0", b"\n"]),
        st.binary(max_size=40),
    ),
    max_size=20,
).map(b"".join)


def _frame_all(framer: p.CommandFramer, *, at_eof: bool) -> list[p.RawCommand]:
    out: list[p.RawCommand] = []
    while (raw := framer.next_command(at_eof=at_eof)) is not None:
        out.append(raw)
        cmd = p.parse_command(raw)
        assert cmd is None or cmd.name in p.COMMANDS
    return out


@fuzz(500)
@given(data=_stream, cuts=st.lists(st.integers(0, 2000), max_size=8))
def test_framing_does_not_depend_on_how_the_bytes_arrive(data: bytes, cuts: list[int]) -> None:
    whole = p.CommandFramer(limit=256)
    pieces = p.CommandFramer(limit=256)
    try:
        whole.feed(data)
        expected = _frame_all(whole, at_eof=False)
    except p.CommandTooLong:
        return
    got: list[p.RawCommand] = []
    start = 0
    for cut in [*sorted({c for c in cuts if c < len(data)}), len(data)]:
        pieces.feed(data[start:cut])
        start = cut
        got += _frame_all(pieces, at_eof=False)
    assert got == expected
    assert bytes(pieces.buffer) == bytes(whole.buffer)


@fuzz(1000)
@given(body=st.binary(max_size=300), style=st.sampled_from(list(p.Style)))
def test_any_line_parses_or_is_unknown_and_echoes_safely(body: bytes, style: p.Style) -> None:
    cmd = p.parse_command(p.RawCommand(style, body))
    if cmd is None:
        return
    assert cmd.name in p.COMMANDS
    if cmd.arg is not None:
        # an argument echoed in a reply can never start a second reply line
        echoed = p.reply(style.term, p.ok(p.clean_name(cmd.arg)))
        assert echoed.count(style.term) == 1 and echoed.endswith(style.term)


# --- the live daemon --------------------------------------------------------------

# QUIT is clamd's old name for SHUTDOWN
_SAFE_NAMES = [n for n in p.COMMANDS if n not in ("SHUTDOWN", "QUIT", "RELOAD")]
_PREFIX = st.sampled_from([b"z", b"n", b"", b"Z", b"x"])
_TERM = st.sampled_from([b"\0", b"\n", b"\r\n", b""])


def _paths(folder: Path) -> st.SearchStrategy[bytes]:
    return st.sampled_from(
        [
            str(folder / "clean.txt").encode(),
            str(folder / "missing").encode(),
            str(folder).encode(),
            str(folder / ".." / folder.name / "clean.txt").encode(),
            b"relative/path",
            b"\xff\xfe",
        ]
    )


def _commands(folder: Path) -> st.SearchStrategy[bytes]:
    named = st.builds(
        lambda pre, name, arg, term: pre + name.encode() + (b" " + arg if arg else b"") + term,
        _PREFIX,
        st.sampled_from(_SAFE_NAMES),
        st.one_of(st.none(), _paths(folder), st.binary(max_size=20)),
        _TERM,
    )
    chunk = st.builds(
        lambda size, data: struct.pack(">I", size) + data,
        st.one_of(st.integers(0, 64), st.sampled_from([2**31, 2**32 - 1, 70 * 1024 * 1024])),
        st.binary(max_size=64),
    )
    return st.one_of(named, chunk, st.binary(max_size=30))


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningDaemon, Path]]:
    folder = tmp_path_factory.mktemp("clamd-fuzz")
    (folder / "clean.txt").write_bytes(b"nothing to see\n")
    d = start_daemon(
        workers=1,
        command_timeout=2.0,
        read_timeout=2.0,
        idle_timeout=2.0,
        scan_timeout=3.0,
        stream_max_length=1024 * 1024,
    )
    failures: list[dict[str, Any]] = []

    def record(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        failures.append(context)

    d.loop.call_soon_threadsafe(d.loop.set_exception_handler, record)
    d.failures = failures  # type: ignore[attr-defined]
    yield d, folder
    d.stop()


_MAX_REPLY = 64 * 1024


@fuzz(150)
@given(data=st.data())
def test_any_dialogue_gets_a_bounded_answer_and_the_daemon_stays_up(
    daemon: tuple[RunningDaemon, Path], data: st.DataObject, caplog: pytest.LogCaptureFixture
) -> None:
    d, folder = daemon
    items = data.draw(st.lists(_commands(folder), min_size=1, max_size=8))
    if data.draw(st.booleans()):
        items.insert(0, data.draw(st.sampled_from([b"zIDSESSION\0", b"nIDSESSION\n"])))
    with caplog.at_level(logging.ERROR), socket.socket(socket.AF_UNIX) as sock:
        # every time-out of the daemon is 2-3 s: 20 s without an answer is a hang
        sock.settimeout(20)
        sock.connect(d.socket)
        try:
            sock.sendall(b"".join(items))
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it may close early, on a line it refuses
        answer = read_all(sock)
    assert len(answer) <= _MAX_REPLY
    assert b"Traceback" not in answer
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    assert d.failures == []  # type: ignore[attr-defined]
    assert d.exchange(b"zPING\0") == b"PONG\0"
