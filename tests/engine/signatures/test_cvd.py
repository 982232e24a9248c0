"""ClamAV containers (.cvd/.cld/.cud) built in the test."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from mailwarden.engine.filetype import FileKind
from mailwarden.engine.signatures import load_signatures
from mailwarden.engine.signatures.cvd import read_header
from mailwarden.errors import SignatureError


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _container(
    members: dict[str, bytes], *, gz: bool = True, version: int = 27001, md5: str | None = None
) -> bytes:
    body = _tar(members)
    if gz:
        body = gzip.compress(body)
    digest = md5 or hashlib.md5(body, usedforsecurity=False).hexdigest()
    header = f"ClamAV-VDB:27 Nov 2026 10-00 +0000:{version}:3:90:{digest}:sig:builder:1790000000"
    return header.encode().ljust(512, b" ") + body


MEMBERS = {
    "daily.ndb": b"Cvd.Body:0:*:6376642d626f6479\n",
    "daily.ldb": b"Cvd.Logical;Target:0;0&1;6c6f672d61;6c6f672d62\n",
    "daily.ign2": b"Cvd.Ignored\n",
    "daily.hdb": b"%s:8:Cvd.Ignored\n"
    % hashlib.md5(b"ignoreme", usedforsecurity=False).hexdigest().encode(),
    "daily.info": b"DAILY:27001:3\n",
    "daily.cdb": b"x\n",
    "COPYING": b"license\n",
}


@pytest.mark.parametrize(
    ("suffix", "gz"), [(".cvd", True), (".cld", False), (".cld", True), (".cud", True)]
)
def test_container_members_load_as_official(tmp_path: Path, suffix: str, gz: bool) -> None:
    path = tmp_path / f"daily{suffix}"
    path.write_bytes(_container(MEMBERS, gz=gz))
    sigs = load_signatures([tmp_path], bundled=False, matcher="aho")
    assert sigs.report.version == "daily:27001"
    assert sigs.report.counts == {"ndb": 1, "ldb": 1, "ign2": 1}
    assert sigs.report.skipped == {
        "ignored by .ign2": 1,
        "file type .info": 1,
        "file type .cdb": 1,
        "file without extension": 1,
    }
    (hit,) = sigs.match(b"xx cvd-body yy", FileKind.BINARY)
    assert (hit.name, hit.official) == ("Cvd.Body", True)
    assert [m.name for m in sigs.match(b"log-a log-b", FileKind.BINARY)] == ["Cvd.Logical"]
    assert sigs.match(b"ignoreme", FileKind.BINARY) == []


def test_cvd_md5_mismatch_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "main.cvd"
    path.write_bytes(_container(MEMBERS, md5="0" * 32))
    with pytest.raises(SignatureError, match="MD5") as info:
        load_signatures([path], bundled=False, matcher="aho")
    assert info.value.file == str(path)


def test_bad_header_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "main.cld"
    path.write_bytes(b"not a container".ljust(600, b"\x00"))
    with pytest.raises(SignatureError, match="header"):
        load_signatures([path], bundled=False, matcher="aho")


def test_damaged_archive_is_an_error(tmp_path: Path) -> None:
    good = _container(MEMBERS, gz=False)
    path = tmp_path / "main.cld"
    path.write_bytes(good[:512] + b"\x00garbage" * 200)
    with pytest.raises(SignatureError):
        load_signatures([path], bundled=False, matcher="aho")


def test_errors_inside_members_name_the_member(tmp_path: Path) -> None:
    path = tmp_path / "daily.cvd"
    path.write_bytes(_container({"daily.ndb": b"Ok:0:*:414243\nBad:0:*:4\n"}))
    with pytest.raises(SignatureError) as info:
        load_signatures([path], bundled=False, matcher="aho")
    assert info.value.file == f"{path}[daily.ndb]"
    assert info.value.line == 2


def test_header_fields() -> None:
    header = read_header(_container({}, version=62), file="x")
    assert header.version == 62
    assert header.flevel == 90
    assert header.builder == "builder"
