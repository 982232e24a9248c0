"""Tests of the clamd harness itself, so a broken harness is not mistaken for an engine bug."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from support.clamd import (
    ClamdFactory,
    ClamdStartError,
    normalize_name,
    parse_reply,
    render_config,
    start_clamd,
)

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("stream: OK", ("clean", "")),
        ("stream: Eicar-Test-Signature.UNOFFICIAL FOUND", ("infected", "Eicar-Test-Signature")),
        ("stream: Win.Test.EICAR_HDB-1 FOUND", ("infected", "Win.Test.EICAR_HDB-1")),
        ("INSTREAM size limit exceeded. ERROR", ("error", "INSTREAM size limit exceeded. ERROR")),
    ],
)
def test_parse_reply(reply: str, expected: tuple[str, str]) -> None:
    assert parse_reply(reply) == expected


def test_normalize_name_strips_only_a_trailing_unofficial() -> None:
    assert normalize_name("A.UNOFFICIAL.B") == "A.UNOFFICIAL.B"
    assert normalize_name(" Foo.UNOFFICIAL ") == "Foo"


def test_config_stays_private_unless_tcp_is_asked(tmp_path: Path) -> None:
    db = tmp_path / "db"
    text = render_config(tmp_path, db)
    settings = dict(line.split(" ", 1) for line in text.splitlines())
    assert settings["LocalSocket"] == str(tmp_path / "clamd.sock")
    assert settings["DatabaseDirectory"] == str(db)
    assert settings["Foreground"] == "yes"
    assert settings["DisableCache"] == "yes"
    assert settings["StreamMaxLength"] == "64M"
    assert "TCPSocket" not in settings
    assert "User" not in settings
    with_tcp = dict(
        line.split(" ", 1) for line in render_config(tmp_path, db, tcp_port=3999).splitlines()
    )
    assert with_tcp["TCPSocket"] == "3999"
    assert with_tcp["TCPAddr"] == "127.0.0.1"


def _eicar_db(folder: Path) -> Path:
    folder.mkdir()
    (folder / "test.ndb").write_text(f"Harness.Eicar:0:*:{EICAR.hex()}\n")
    return folder


@pytest.mark.clamd
def test_clamd_scans_with_the_given_database(clamd_factory: ClamdFactory, tmp_path: Path) -> None:
    clamd = clamd_factory(_eicar_db(tmp_path / "db"))
    assert clamd.ping()
    assert parse_reply(clamd.scan(b"prefix " + EICAR + b" suffix")) == (
        "infected",
        "Harness.Eicar",
    )
    assert parse_reply(clamd.scan(b"nothing to see here\r\n" * 5000)) == ("clean", "")
    clamd.stop()
    assert clamd.process.poll() is not None
    assert not clamd.workdir.exists()


@pytest.mark.clamd
def test_clamd_listens_on_tcp_only_when_asked(clamd_factory: ClamdFactory, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clamd = clamd_factory(_eicar_db(tmp_path / "db"), tcp_port=port)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"zPING\0")
        assert conn.recv(16).rstrip(b"\0") == b"PONG"
    clamd.stop()


@pytest.mark.clamd
def test_clamd_start_failure_quotes_the_log(clamd_factory: ClamdFactory, tmp_path: Path) -> None:
    clamd_factory(_eicar_db(tmp_path / "probe"))  # skips (or fails under CI) without clamd
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ClamdStartError) as info:
        start_clamd(empty, timeout=60)
    assert "exited" in str(info.value)
    assert "database" in str(info.value).lower()
