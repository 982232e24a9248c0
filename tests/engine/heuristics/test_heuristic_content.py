"""Encrypted-archive and disk-image probes, through check() with the switch on."""

from __future__ import annotations

import io
import mmap
import struct
import tempfile
import zipfile
from collections.abc import Iterator

import py7zr
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.engine.filetype import FileKind, sniff
from mailwarden.engine.heuristics import HeuristicSettings, check
from mailwarden.engine.heuristics._content import is_disk_image, is_encrypted_archive
from mailwarden.engine.objects import Buffer, ScanObject

ENCRYPTED_ON = HeuristicSettings(encrypted_archives=True)


def _names(data: Buffer, name: str, cfg: HeuristicSettings = ENCRYPTED_ON) -> list[str]:
    obj = ScanObject(data, name=name, parent_kind="mime")
    return [hit.name for hit in check(obj, sniff(data), cfg)]


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def _set_encrypted_flag(archive: bytes, member: int) -> bytes:
    """Set general-purpose bit 0 in the local header of the ``member``-th entry."""
    buf = bytearray(archive)
    off = -1
    for _ in range(member + 1):
        off = buf.index(b"PK\x03\x04", off + 1)
    flags = struct.unpack_from("<H", buf, off + 6)[0]
    struct.pack_into("<H", buf, off + 6, flags | 1)
    return bytes(buf)


def _7z(password: str | None, header_encryption: bool = False) -> bytes:
    out = io.BytesIO()
    with py7zr.SevenZipFile(
        out, "w", password=password, header_encryption=header_encryption
    ) as archive:
        archive.writestr(b"quarterly figures " * 50, "figures.txt")
    return out.getvalue()


def _rar4(main_flags: int = 0, file_flags: int = 0) -> bytes:
    main = struct.pack("<HBHH", 0, 0x73, main_flags, 13) + b"\x00" * 6
    file = struct.pack("<HBHH", 0, 0x74, file_flags, 32) + b"\x00" * 25
    return b"Rar!\x1a\x07\x00" + main + file


def _rar5(first_type: int) -> bytes:
    return b"Rar!\x1a\x07\x01\x00" + b"\x00" * 4 + bytes([3, first_type, 0, 0]) + b"\x00" * 16


# --- ZIP -----------------------------------------------------------------------------


def test_plain_zip_is_not_encrypted() -> None:
    assert _names(_zip({"a.txt": b"hello", "b.txt": b"world"}), "docs.zip") == []


@pytest.mark.parametrize("member", [0, 2])
def test_zip_with_an_encrypted_member(member: int) -> None:
    archive = _zip({f"{i}.txt": b"secret" * i for i in range(4)})
    assert _names(_set_encrypted_flag(archive, member), "docs.zip") == [
        "Heuristics.Encrypted.Archive"
    ]


def test_encrypted_zip_needs_the_switch() -> None:
    archive = _set_encrypted_flag(_zip({"a.txt": b"hello"}), 0)
    assert _names(archive, "docs.zip", HeuristicSettings()) == []


def test_zip_with_a_dangerous_name_reports_the_name_first() -> None:
    archive = _set_encrypted_flag(_zip({"a.txt": b"hello"}), 0)
    assert _names(archive, "docs.pdf.iso") == ["Heuristics.DoubleExtension"]


def test_truncated_zip_headers_are_not_encrypted() -> None:
    archive = _zip({"a.txt": b"hello" * 100, "b.txt": b"x"})
    for cut in (4, 20, 40, len(archive) // 2):
        assert not is_encrypted_archive(archive[:cut], FileKind.ZIP)


# --- 7z ------------------------------------------------------------------------------


def test_plain_7z_is_not_encrypted() -> None:
    assert _names(_7z(None), "docs.7z") == []


def test_7z_with_encrypted_header() -> None:
    data = _7z("s3cret", header_encryption=True)
    assert _names(data, "docs.7z") == ["Heuristics.Encrypted.Archive"]


def test_7z_with_an_impossible_header_offset() -> None:
    data = bytearray(_7z("s3cret"))
    struct.pack_into("<Q", data, 12, 2**62)
    assert not is_encrypted_archive(bytes(data), FileKind.SEVENZ)


# --- RAR -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_rar4(), False),
        (_rar4(main_flags=0x0080), True),
        (_rar4(file_flags=0x0004), True),
        (_rar5(1), False),
        (_rar5(4), True),
        (b"Rar!\x1a\x07\x00", False),
        (b"Rar!\x1a\x07\x01\x00\xff\xff", False),
    ],
)
def test_rar_encryption_flags(data: bytes, expected: bool) -> None:
    assert is_encrypted_archive(data, FileKind.RAR) is expected


# --- disk images and buffers -----------------------------------------------------------


def test_small_binary_is_not_a_disk_image() -> None:
    assert not is_disk_image(b"\x00\x01" * 10, FileKind.BINARY)
    assert not is_disk_image(b"vhdxfile", FileKind.TEXT)


@pytest.fixture
def mapped_zip() -> Iterator[mmap.mmap]:
    archive = _set_encrypted_flag(_zip({"a.txt": b"hello"}), 0)
    with tempfile.TemporaryFile() as fh:
        fh.write(archive)
        fh.flush()
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        yield mapped
        mapped.close()


def test_probes_read_mmap_buffers(mapped_zip: mmap.mmap) -> None:
    assert _names(mapped_zip, "docs.zip") == ["Heuristics.Encrypted.Archive"]


@settings(max_examples=300, deadline=None)
@given(
    head=st.sampled_from(
        [b"PK\x03\x04", b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07\x00", b"Rar!\x1a\x07\x01\x00"]
    ),
    tail=st.binary(max_size=400),
    kind=st.sampled_from(list(FileKind)),
)
def test_probes_never_raise(head: bytes, tail: bytes, kind: FileKind) -> None:
    assert isinstance(is_encrypted_archive(head + tail, kind), bool)
    assert isinstance(is_disk_image(head + tail, kind), bool)
