"""The same requests to Debian's clamd and to mailwarden's daemon get the same bytes back.

Both load one signature folder (EICAR as an unsigned .ndb), so even scan
replies, ``.UNOFFICIAL`` suffix included, must match byte for byte.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest

from daemon.e2e import engine_for, signature_folder
from daemon.harness import EICAR, read_all
from mailwarden.daemon import protocol as p

pytestmark = pytest.mark.clamd


def instream(data: bytes, prefix: bytes = b"z") -> bytes:
    return (
        prefix
        + b"INSTREAM"
        + (b"\0" if prefix == b"z" else b"\n")
        + b"".join(bytes(c) for c in p.chunks(data))
    )


REQUESTS = [
    b"zPING\0",
    b"nPING\n",
    b"PING\n",
    b"zFOO\0",
    b"nFOO\n",
    b"FOO\n",
    b"zPING extra\0",
    b"zSCAN\0",
    b"zEND\0",
    b"\0",
    b"zSTREAM\0",
    b"VERSIONCOMMANDS\n",
    b"zDETSTATS\0",
    b"zSCAN /nonexistent/file\0",
    instream(EICAR),
    instream(EICAR, b"n"),
    instream(b"Subject: hi\r\n\r\nhello\r\n"),
    instream(b""),
    b"zINSTREAM\0\xff\xff\xff\xff",
    b"zIDSESSION\0zPING\0" + instream(EICAR) + b"zEND\0",
    b"zIDSESSION\0zPING\0zRELOAD\0",
    b"zIDSESSION\0zFOO\0",
    b"zIDSESSION\0zIDSESSION\0",
    b"zIDSESSION\0zEND\0",
    b"zIDSESSION\0zINSTREAM\0" + struct.pack(">I", 0x7FFFFFFF),
    b"nIDSESSION\nnPING\nnEND\n",
]


def ask(path: Path | str, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(20)
        sock.connect(str(path))
        sock.sendall(data)
        return read_all(sock)


def test_replies_are_byte_compatible_with_clamd(
    clamd_factory, start_daemon, tmp_path: Path
) -> None:
    sigs = signature_folder(tmp_path)
    clamd = clamd_factory(sigs)
    ours = start_daemon(real=True, engine=engine_for(sigs))
    for request in REQUESTS:
        assert ask(ours.socket, request) == ask(clamd.socket_path, request), request


def test_scan_of_a_path_matches_clamd(clamd_factory, start_daemon, tmp_path: Path) -> None:
    sigs = signature_folder(tmp_path)
    clamd = clamd_factory(sigs)
    ours = start_daemon(real=True, engine=engine_for(sigs))
    infected = tmp_path / "infected.eml"
    infected.write_bytes(EICAR)
    clean = tmp_path / "clean.eml"
    clean.write_bytes(b"hello\n")
    infected.chmod(0o644)
    clean.chmod(0o644)
    for command in (b"zSCAN ", b"zCONTSCAN ", b"nSCAN ", b"zMULTISCAN "):
        for target in (infected, clean):
            request = (
                command
                + str(target).encode()
                + command[:1].replace(b"z", b"\0").replace(b"n", b"\n")
            )
            assert ask(ours.socket, request) == ask(clamd.socket_path, request), request


def test_versioncommands_lists_clamds_commands(clamd_factory, start_daemon, tmp_path: Path) -> None:
    sigs = signature_folder(tmp_path)
    clamd = clamd_factory(sigs)
    ours = start_daemon(real=True, engine=engine_for(sigs))
    theirs = ask(clamd.socket_path, b"zVERSIONCOMMANDS\0").decode().rstrip("\0")
    mine = ask(ours.socket, b"zVERSIONCOMMANDS\0").decode().rstrip("\0")
    assert mine.split("| COMMANDS: ")[1].split()[:-1] == theirs.split("| COMMANDS: ")[1].split()
    # the release number may differ from the installed clamd's; the shape may not
    assert ask(ours.socket, b"zVERSION\0").startswith(b"ClamAV ")
