"""Shared pieces of the end-to-end tests: a signature folder both mailwarden's
engine and Debian's clamd load, and a clamd.conf that points clamdscan at us.

SECURITY: test-only; EICAR is the harmless standard test string.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from daemon.harness import EICAR
from mailwarden.engine import EngineSettings

CLAMDSCAN = shutil.which("clamdscan") or "/usr/bin/clamdscan"


def ndb_line(name: str, text: bytes) -> str:
    return f"{name}:0:*:{text.hex()}\n"


def signature_folder(root: Path) -> Path:
    folder = root / "sigs"
    folder.mkdir()
    (folder / "test.ndb").write_text(ndb_line("Eicar-Test-Signature", EICAR))
    return folder


def engine_for(folder: Path) -> EngineSettings:
    return EngineSettings(databases=(folder,), bundled=False, cache_dir=None)


def clamdscan_config(root: Path, *, socket: str | None = None, tcp: int | None = None) -> Path:
    lines = []
    if socket:
        lines.append(f"LocalSocket {socket}")
    if tcp:
        lines += [f"TCPSocket {tcp}", "TCPAddr 127.0.0.1"]
    config = root / "clamd.conf"
    config.write_text("\n".join(lines) + "\n")
    return config


def need_clamdscan() -> None:
    if not Path(CLAMDSCAN).exists():
        pytest.skip("clamdscan is not installed (apt-get install clamdscan)")
