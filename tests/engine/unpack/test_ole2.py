"""The OLE2 extractor on compound files built here (and Debian's clam.ole.doc)."""

from __future__ import annotations

import itertools
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailwarden.engine.limits import Limits
from mailwarden.engine.objects import Child, ScanObject, WalkContext
from mailwarden.engine.unpack.ole2 import extract_ole2

CLAM_DOC = Path("/usr/share/clamav-testfiles/clam.ole.doc")
SECTOR = 512
END, FREE, FATSECT, NOSTREAM = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
PAYLOAD = b"MZ\x90\x00" + bytes(range(256)) * 4


def _compound(streams: dict[str, bytes]) -> bytes:
    """A version 3 compound file holding ``streams`` ("Storage/Stream" paths).

    Every stream is padded to at least 4096 bytes so it lives in the regular
    FAT (the mini stream is not needed); siblings are chained through their
    right pointers, which readers accept.
    """
    entries: list[dict] = [{"name": "Root Entry", "type": 5, "children": []}]
    storages: dict[str, int] = {"": 0}
    for path, content in streams.items():
        parent = ""
        for part in path.split("/")[:-1]:
            key = f"{parent}/{part}" if parent else part
            if key not in storages:
                storages[key] = len(entries)
                entries.append({"name": part, "type": 1, "children": []})
                entries[storages[parent]]["children"].append(storages[key])
            parent = key
        index = len(entries)
        data = content + b"\x00" * max(0, 4096 - len(content))
        entries.append({"name": path.split("/")[-1], "type": 2, "data": data, "children": []})
        entries[storages[parent]]["children"].append(index)
    body = bytearray()
    fat: list[int] = []

    def place(data: bytes) -> int:
        start = len(fat)
        count = max(1, -(-len(data) // SECTOR))
        fat.extend(range(start + 1, start + count))
        fat.append(END)
        body.extend(data + b"\x00" * (count * SECTOR - len(data)))
        return start

    for entry in entries:
        if entry["type"] == 2:
            entry["start"] = place(entry["data"])
    directory = bytearray()
    for entry in entries:
        kids = entry["children"]
        entry["child"] = kids[0] if kids else NOSTREAM
        for a, b in itertools.pairwise(kids):
            entries[a]["right"] = b
    for entry in entries:
        name = entry["name"].encode("utf-16-le") + b"\x00\x00"
        directory += name.ljust(64, b"\x00") + struct.pack(
            "<HBBIII16sIQQIQ",
            len(name),
            entry["type"],
            1,
            NOSTREAM,
            entry.get("right", NOSTREAM),
            entry["child"],
            b"\x00" * 16,
            0,
            0,
            0,
            entry.get("start", END),
            len(entry.get("data", b"")),
        )
    directory += b"\x00" * (-len(directory) % SECTOR)
    dir_start = place(bytes(directory))
    fat_sectors = 1
    while (len(fat) + fat_sectors) > fat_sectors * (SECTOR // 4):
        fat_sectors += 1
    first_fat = len(fat)
    fat.extend([FATSECT] * fat_sectors)
    fat.extend([FREE] * (fat_sectors * (SECTOR // 4) - len(fat)))
    body += struct.pack(f"<{len(fat)}I", *fat)
    difat = list(range(first_fat, first_fat + fat_sectors)) + [FREE] * (109 - fat_sectors)
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + b"\x00" * 16
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + b"\x00" * 6
        + struct.pack("<IIIIIIIII", 0, fat_sectors, dir_start, 0, 4096, END, 0, END, 0)
        + struct.pack("<109I", *difat)
    )
    return header + bytes(body)


def _extract(raw: bytes) -> tuple[list[Child], WalkContext]:
    ctx = WalkContext(Limits())
    return list(extract_ole2(ScanObject(raw, name="doc.doc"), ctx)), ctx


def _native(label: bytes, path: bytes, data: bytes) -> bytes:
    body = (
        b"\x02\x00"
        + label
        + b"\x00"
        + path
        + b"\x00"
        + struct.pack("<II", 0x30000, 4)
        + b"tmp\x00"
        + struct.pack("<I", len(data))
        + data
    )
    return struct.pack("<I", len(body)) + body


def test_streams_are_yielded_under_their_paths() -> None:
    raw = _compound(
        {"WordDocument": b"\xec\xa5" + b"\x00" * 20, "\x05Summary": b"sum", "A/B/c": b"deep"}
    )
    children, ctx = _extract(raw)
    labels = {c.label: bytes(c.data).rstrip(b"\x00") for c in children}
    assert labels == {"WordDocument": b"\xec\xa5", "_Summary": b"sum", "A/B/c": b"deep"}
    assert ctx.unscanned_notes == []
    assert ctx.budget.total_bytes == sum(len(c.data) for c in children)


def test_ole10native_package_is_unwrapped() -> None:
    raw = _compound(
        {"ObjectPool/_1/\x01Ole10Native": _native(b"invoice.exe", b"C:\\x\\invoice.exe", PAYLOAD)}
    )
    children, _ = _extract(raw)
    package = [c for c in children if c.name == "invoice.exe"]
    assert [c.label for c in package] == ["ObjectPool/_1/_Ole10Native/invoice.exe"]
    assert bytes(package[0].data) == PAYLOAD


@pytest.mark.parametrize(
    "streams",
    [
        {"EncryptedPackage": b"x" * 100, "EncryptionInfo": b"y"},
        {"WordDocument": b"\xec\xa5" + b"\x00" * 8 + b"\x00\x01" + b"\x00" * 20},
        {
            "Workbook": struct.pack("<HH", 0x0809, 4)
            + b"\x00" * 4
            + struct.pack("<HH", 0x2F, 2)
            + b"\x01\x00"
        },
        {"EncryptedSummary": b"z"},
    ],
    ids=["agile", "word", "excel", "powerpoint"],
)
def test_encrypted_documents_are_reported(streams: dict[str, bytes]) -> None:
    children, ctx = _extract(_compound(streams))
    assert ctx.unscanned_notes == [("", "encrypted document")]
    assert children


def test_vba_storage_without_a_valid_project_is_contained() -> None:
    children, _ = _extract(_compound({"Macros/VBA/dir": b"\x01junk", "Macros/VBA/Module1": b"x"}))
    assert {c.label for c in children} >= {"Macros/VBA/dir", "Macros/VBA/Module1"}
    assert not any(c.label.startswith("vba/") for c in children)


def test_not_a_compound_file_is_a_warning() -> None:
    children, ctx = _extract(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100)
    assert children == []
    assert len(ctx.warnings) == 1


def test_stream_claiming_more_than_the_file_is_skipped() -> None:
    raw = bytearray(_compound({"Big": b"b" * 5000, "Small": b"s"}))
    # the directory follows the stream sectors: patch the "Big" entry's size
    entry = raw.find("Big".encode("utf-16-le") + b"\x00\x00")
    struct.pack_into("<I", raw, entry + 120, 0x7FFF0000)
    children, ctx = _extract(bytes(raw))
    assert [c.label for c in children] == ["Small"]
    assert ctx.warnings == [("/Big", "stream larger than the file: skipped")]


@pytest.mark.skipif(not CLAM_DOC.exists(), reason="clamav-testfiles is not installed")
def test_clamav_sample_embedded_executable() -> None:
    children, _ = _extract(CLAM_DOC.read_bytes())
    exe = [c for c in children if c.label.endswith("_Ole10Native/Clam.exe")]
    assert len(exe) == 1
    assert bytes(exe[0].data).startswith(b"MZ")


_VALID = _compound({"WordDocument": b"w" * 10, "O/\x01Ole10Native": _native(b"a", b"b", b"c" * 9)})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)), max_size=12))
def test_fuzz_mutations_never_raise_and_output_is_bounded(flips: list[tuple[int, int]]) -> None:
    raw = bytearray(_VALID)
    for pos, value in flips:
        raw[pos] = value
    children, _ = _extract(bytes(raw))
    assert all(len(c.data) <= len(raw) for c in children)
