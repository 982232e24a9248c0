"""Content sniffing decides the extractor; names never do."""

from __future__ import annotations

import pytest

from mailwarden.engine.filetype import FileKind, looks_like_mail, sniff

PE = b"MZ" + b"\0" * 58 + (64).to_bytes(4, "little") + b"PE\0\0" + b"\0" * 64


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"", FileKind.EMPTY),
        (b"From: a@b\r\nTo: c@d\r\n\r\nhi", FileKind.MAIL),
        (b"Received: from x\nSubject: y\n\nbody", FileKind.MAIL),
        (b"Dear team: the report is attached.\nregards", FileKind.TEXT),
        (b"<!DOCTYPE html><html><body>x</body></html>", FileKind.HTML),
        (b"PK\x03\x04rest", FileKind.ZIP),
        (b"\x1f\x8b\x08\x00", FileKind.GZIP),
        (b"BZh91AY", FileKind.BZIP2),
        (b"\xfd7zXZ\x00\x00", FileKind.XZ),
        (b"7z\xbc\xaf\x27\x1c\x00", FileKind.SEVENZ),
        (b"%PDF-1.7\n", FileKind.PDF),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 8, FileKind.OLE2),
        (b"\x78\x9f\x3e\x22\x00", FileKind.TNEF),
        (PE, FileKind.PE),
        (b"\x7fELF\x02\x01", FileKind.ELF),
        (b"\xff\xd8\xff\xe0", FileKind.GRAPHICS),
        (b"\x00\x01\x02\x03" * 10, FileKind.BINARY),
    ],
)
def test_sniff(data: bytes, kind: FileKind) -> None:
    assert sniff(data) is kind


def test_tar_is_found_by_ustar_magic() -> None:
    block = bytearray(512)
    block[257:262] = b"ustar"
    assert sniff(bytes(block)) is FileKind.TAR


@pytest.mark.parametrize(
    "data",
    [
        b"From: a@example.org\nX-Junk: a\x00b\n\nbody",
        b"From: a@example.org\nSubject: \x01\x02\x03\x04\x05\n\nbody",
        b"MZ: x\nFrom: a@example.org\n\nbody",
        b"BZh: x\nFrom: a@example.org\n\nbody",
        b"From a@example.org Mon Jan  1 00:00:00 2024\nSubject: %PDF-1.4\n\n",
    ],
)
def test_a_header_block_is_mail_whatever_sniffing_says(data: bytes) -> None:
    # these evaded the MIME walk: the walker parses them as mail when they come from an MTA
    assert looks_like_mail(data)


@pytest.mark.parametrize(
    "data",
    [
        b"PK\x03\x04" + b"a: b\n" * 4,
        b"MZ\x90\x00\x03",
        b"BZh91AY&SY: x\nFrom: y\n",
        b"%PDF-1.7\n1 0 obj\n",
        b"Dear Bob: hello\nthere",
    ],
)
def test_binary_magic_and_prose_are_not_mail(data: bytes) -> None:
    assert not looks_like_mail(data)
