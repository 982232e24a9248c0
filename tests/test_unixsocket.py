"""unixsocket.py: the one binder of the servers' unix sockets.

Each test binds in a fresh folder under ``tmp_path``.  The mode right after
the bind is seen by wrapping ``os.chmod``, the first thing that widens it;
the process umask is set to 0, the worst an init system could leave.
"""

from __future__ import annotations

import asyncio
import grp
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailwarden.unixsocket import answers, bind_unix, start_unix_server

UNKNOWN_GROUP = "mailwarden-no-such-group"


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _spy_on_chmod(monkeypatch: pytest.MonkeyPatch, path: Path) -> list[int]:
    """The socket's mode each time before it is changed."""
    seen: list[int] = []
    real = os.chmod

    def chmod(target: Any, mode: int, *args: Any, **kwargs: Any) -> None:
        if os.fspath(target) == str(path):
            seen.append(_mode(path))
        real(target, mode, *args, **kwargs)

    monkeypatch.setattr(os, "chmod", chmod)
    return seen


def _stale(path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as old:
        old.bind(str(path))  # bound, never listening: what a killed server leaves


def test_the_socket_is_owner_only_until_its_mode_is_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "run" / "d.sock"  # the folder is made too
    seen = _spy_on_chmod(monkeypatch, path)
    with bind_unix(path, mode=0o660, owner_name="mailwarden daemon") as sock:
        assert seen == [0o600]
        assert _mode(path) == 0o660
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
        assert sock.getsockname() == str(path)
        assert answers(path)  # already listening
    assert os.umask(0) == 0  # the process umask is given back


def test_the_configured_group_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "d.sock"
    name = grp.getgrgid(os.getgid()).gr_name
    with bind_unix(path, mode=0o640, group=name, owner_name="mailwarden daemon"):
        info = os.lstat(path)
        assert info.st_gid == os.getgid()
        assert stat.S_IMODE(info.st_mode) == 0o640


@pytest.mark.parametrize("key", ["socket_group", "agent_socket_group"])
def test_an_unknown_group_names_its_key_and_leaves_no_socket(tmp_path: Path, key: str) -> None:
    with pytest.raises(KeyError):
        grp.getgrnam(UNKNOWN_GROUP)
    path = tmp_path / "d.sock"
    with pytest.raises(OSError, match=f"^{key} '{UNKNOWN_GROUP}' does not exist$"):
        bind_unix(path, mode=0o660, group=UNKNOWN_GROUP, group_key=key, owner_name="mda agent")
    assert not os.path.lexists(path)
    # nothing left behind that a second attempt would trip over
    with bind_unix(path, mode=0o660, owner_name="mda agent"):
        assert answers(path)


def test_a_stale_socket_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "d.sock"
    _stale(path)
    assert _mode(path) == 0o777  # bound under the open umask: tells it from the new one
    assert not answers(path)
    with bind_unix(path, mode=0o600, owner_name="mailwarden daemon"):
        assert answers(path)
        assert _mode(path) == 0o600


@pytest.mark.parametrize("owner", ["mailwarden daemon", "mda agent", "milter"])
def test_a_live_socket_is_refused_and_keeps_answering(tmp_path: Path, owner: str) -> None:
    path = tmp_path / "d.sock"
    with bind_unix(path, mode=0o600, owner_name=owner) as live:
        before = os.lstat(path).st_ino
        with pytest.raises(OSError, match=f"^{path} is in use by a running {owner}$"):
            bind_unix(path, mode=0o666, owner_name=owner)
        assert os.lstat(path).st_ino == before
        assert _mode(path) == 0o600
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(path))
            conn, _ = live.accept()
            conn.close()


def test_a_regular_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "d.sock"
    path.write_text("not a socket")
    os.chmod(path, 0o644)
    with pytest.raises(OSError, match=f"^{path} exists and is not a socket$"):
        bind_unix(path, mode=0o660, owner_name="mailwarden daemon")
    assert path.read_text() == "not a socket"
    assert _mode(path) == 0o644


def test_a_symlink_is_refused_even_to_a_stale_socket(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.sock"
    _stale(target)
    path = tmp_path / "d.sock"
    path.symlink_to(target)
    with pytest.raises(OSError, match="exists and is not a socket"):
        bind_unix(path, mode=0o660, owner_name="milter")
    assert path.is_symlink() and os.readlink(path) == str(target)
    assert stat.S_ISSOCK(os.lstat(target).st_mode)


def test_a_failed_bind_gives_the_umask_back(tmp_path: Path) -> None:
    path = tmp_path / ("x" * 120)  # longer than sun_path holds
    with pytest.raises(OSError):
        bind_unix(path, mode=0o660, owner_name="milter")
    assert os.umask(0) == 0
    assert not os.path.lexists(path)


def test_answers(tmp_path: Path) -> None:
    path = tmp_path / "d.sock"
    assert not answers(path)
    path.write_text("")
    assert not answers(path)
    path.unlink()
    _stale(path)
    assert not answers(path)
    path.unlink()
    with socket.socket(socket.AF_UNIX) as live:
        live.bind(str(path))
        live.listen(1)
        assert answers(path)


def test_the_asyncio_server_follows_the_same_sequence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.sock"
    _stale(path)
    seen = _spy_on_chmod(monkeypatch, path)

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    async def main() -> bytes:
        server = await start_unix_server(echo, path, mode=0o660, owner_name="milter")
        try:
            assert seen == [0o600]
            assert _mode(path) == 0o660
            with pytest.raises(OSError, match="in use by a running milter"):
                await start_unix_server(echo, path, mode=0o666, owner_name="milter")
            with pytest.raises(OSError, match=f"^socket_group '{UNKNOWN_GROUP}'"):
                await start_unix_server(
                    echo, tmp_path / "g.sock", mode=0o660, group=UNKNOWN_GROUP, owner_name="milter"
                )
            assert not os.path.lexists(tmp_path / "g.sock")
            reader, writer = await asyncio.open_unix_connection(str(path))
            writer.write(b"ping\n")
            line = await reader.readline()
            writer.close()
            return line
        finally:
            server.close()
            await server.wait_closed()

    assert asyncio.run(main()) == b"ping\n"
