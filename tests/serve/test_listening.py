"""``serve.listening``: telling whether a process itself listens on an address."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from mailwarden.serve.listening import Endpoint, listens_on


def test_a_tcp_listener_of_this_process_is_found() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert not listens_on(os.getpid(), Endpoint(port=port))  # bound, not listening
        sock.listen()
        assert listens_on(os.getpid(), Endpoint(port=port))


def test_a_unix_listener_of_this_process_is_found(tmp_path: Path) -> None:
    path = str(tmp_path / "l.sock")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(path)
        assert not listens_on(os.getpid(), Endpoint(path=path))
        sock.listen()
        assert listens_on(os.getpid(), Endpoint(path=path))


def test_someone_elses_listener_does_not_count() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        # the parent (pytest's runner or a shell) holds no such socket
        assert not listens_on(os.getppid(), Endpoint(port=port))
