"""Unix sockets are never open to others, not even between bind and chmod.

The daemon's socket is checked in tests/daemon/test_server.py (0660 and the
configured group).  Here the milter's socket is bound under a process umask
of 0, the worst an init system could leave: at the moment the socket appears
it must already be owner-only, and afterwards carry exactly the configured
mode.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from intercept.milter.conftest import config_file, settings
from mailwarden.config import load_config
from mailwarden.intercept.milter.server import MilterServer
from mailwarden.intercept.pipeline import Pipeline


class _NoScanner:
    async def scan_bytes(self, *_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("nothing is scanned here")


def test_the_milter_socket_is_private_from_the_moment_it_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sock = tmp_path / "milter.sock"
    seen: list[int] = []
    real = asyncio.start_unix_server

    async def spy(*args: Any, **kwargs: Any) -> asyncio.AbstractServer:
        server = await real(*args, **kwargs)
        seen.append(stat.S_IMODE(os.stat(sock).st_mode))
        return server

    monkeypatch.setattr(asyncio, "start_unix_server", spy)
    config = load_config(config_file(tmp_path, ""))

    async def main() -> int:
        pipeline = Pipeline.from_config(config, _NoScanner(), host="gw.test.example")  # type: ignore[arg-type]
        server = MilterServer(settings(sock, socket_mode=0o660), pipeline, host="gw.test.example")
        await server.start()
        try:
            return stat.S_IMODE(os.stat(sock).st_mode)
        finally:
            await server.stop(grace=1)

    old = os.umask(0)
    try:
        final = asyncio.run(main())
    finally:
        os.umask(old)
    assert seen and seen[0] & 0o077 == 0, oct(seen[0])
    assert final == 0o660
