"""Debian's real clamdscan against mailwarden's daemon and real engine: output and exit codes."""

from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path

import pytest

from daemon.e2e import CLAMDSCAN, clamdscan_config, engine_for, need_clamdscan, signature_folder
from daemon.harness import EICAR, RunningDaemon

pytestmark = pytest.mark.clamd
FOUND = "Eicar-Test-Signature.UNOFFICIAL FOUND"


@pytest.fixture
def files(tmp_path: Path) -> Path:
    mail = tmp_path / "mail"
    (mail / "sub").mkdir(parents=True)
    (mail / "infected.eml").write_bytes(b"Subject: x\r\n\r\n" + EICAR + b"\r\n")
    (mail / "clean.eml").write_bytes(b"Subject: hello\r\n\r\nnothing to see\r\n")
    (mail / "sub" / "also.eml").write_bytes(EICAR)
    return mail


@pytest.fixture
def real(start_daemon, tmp_path: Path) -> RunningDaemon:
    need_clamdscan()
    return start_daemon(real=True, engine=engine_for(signature_folder(tmp_path)))


def clamdscan(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLAMDSCAN, f"--config-file={config}", "--no-summary", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "mode",
    [
        [],
        ["--stream"],
        ["--fdpass"],
        ["--multiscan"],
        ["--multiscan", "--fdpass"],
        ["--multiscan", "--stream"],
    ],
    ids=["contscan", "stream", "fdpass", "multiscan", "multiscan-fdpass", "multiscan-stream"],
)
def test_clamdscan_finds_what_the_engine_finds(
    real: RunningDaemon, files: Path, tmp_path: Path, mode: list[str]
) -> None:
    config = clamdscan_config(tmp_path, socket=real.socket)
    result = clamdscan(config, *mode, str(files / "infected.eml"), str(files / "clean.eml"))
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        f"{files}/infected.eml: {FOUND}",
        f"{files}/clean.eml: OK",
    ]
    clean = clamdscan(config, *mode, str(files / "clean.eml"))
    assert (clean.returncode, clean.stdout) == (0, f"{files}/clean.eml: OK\n")


@pytest.mark.parametrize(
    "mode", [[], ["--multiscan"], ["--stream"]], ids=["cont", "multi", "stream"]
)
def test_clamdscan_of_a_folder(
    real: RunningDaemon, files: Path, tmp_path: Path, mode: list[str]
) -> None:
    config = clamdscan_config(tmp_path, socket=real.socket)
    result = clamdscan(config, *mode, str(files))
    assert result.returncode == 1, result.stderr
    assert sorted(result.stdout.splitlines()) == [
        f"{files}/infected.eml: {FOUND}",
        f"{files}/sub/also.eml: {FOUND}",
    ]


def test_clamdscan_over_tcp_streams(start_daemon, files: Path, tmp_path: Path) -> None:
    need_clamdscan()
    d = start_daemon(real=True, engine=engine_for(signature_folder(tmp_path)), tcp=("127.0.0.1", 0))
    config = clamdscan_config(tmp_path, tcp=d.server.tcp_address[1])
    result = clamdscan(config, str(files / "infected.eml"))
    assert (result.returncode, result.stdout) == (1, f"{files}/infected.eml: {FOUND}\n")


def test_clamdscan_from_standard_input(real: RunningDaemon, tmp_path: Path) -> None:
    config = clamdscan_config(tmp_path, socket=real.socket)
    result = subprocess.run(
        [CLAMDSCAN, f"--config-file={config}", "--no-summary", "-"],
        input=EICAR,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout.decode().endswith(f": {FOUND}\n")


def test_clamdscan_allmatch(real: RunningDaemon, files: Path, tmp_path: Path) -> None:
    config = clamdscan_config(tmp_path, socket=real.socket)
    result = clamdscan(config, "--allmatch", str(files / "infected.eml"))
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == f"{files}/infected.eml: {FOUND}"


def encrypted_zip() -> bytes:
    """A zip whose entries claim to be encrypted: the engine cannot look inside."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("invoice.exe", b"MZ" + b"\0" * 100)
    data = bytearray(buf.getvalue())
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        data[data.find(signature) + flag_offset] |= 1
    return bytes(data)


@pytest.mark.parametrize("mode", [[], ["--stream"], ["--fdpass"]], ids=["cont", "stream", "fdpass"])
def test_an_unscanned_message_is_an_error_with_exit_2(
    real: RunningDaemon, tmp_path: Path, mode: list[str]
) -> None:
    config = clamdscan_config(tmp_path, socket=real.socket)
    target = tmp_path / "locked.zip"
    target.write_bytes(encrypted_zip())
    result = clamdscan(config, *mode, str(target))
    assert result.returncode == 2
    (line,) = result.stdout.splitlines()
    assert line.startswith(f"{target}: Not scanned completely (encrypted archive")
    assert line.endswith(" ERROR")


def test_clamdscan_version_ping_and_reload(real: RunningDaemon, tmp_path: Path) -> None:
    config = clamdscan_config(tmp_path, socket=real.socket)
    version = subprocess.run(
        [CLAMDSCAN, f"--config-file={config}", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert version.stdout.startswith("ClamAV ")
    ping = subprocess.run(
        [CLAMDSCAN, f"--config-file={config}", "--ping", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (ping.returncode, ping.stdout) == (0, "PONG\n")
    reload = subprocess.run(
        [CLAMDSCAN, f"--config-file={config}", "--reload"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert reload.returncode == 0, reload.stdout + reload.stderr
