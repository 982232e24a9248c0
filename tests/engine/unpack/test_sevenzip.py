"""Tests for the 7z extractor: members, solid blocks, encryption, declared-size refusal."""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

import py7zr
import pytest
from unpack_support import MiB, make_ctx, run

from mailwarden.engine.limits import LimitExceeded
from mailwarden.engine.unpack.sevenzip import extract_7z


def _7z(members: list[tuple[str, bytes]], **kw: object) -> bytes:
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w", **kw) as arc:  # type: ignore[arg-type]
        for name, data in members:
            arc.writestr(data, name)
    return buf.getvalue()


ARCHIVE_PASSWORD = "secret"  # noqa: S105 - locks a test archive, guards nothing

MEMBERS = [
    ("docs/a.txt", b"alpha " * 400),
    ("empty.dat", b""),
    ("bin/b.exe", b"MZ" + random.Random(1).randbytes(5000)),
]


def test_members_of_a_solid_archive() -> None:
    raw = _7z(MEMBERS)
    kids, ctx = run(extract_7z, raw, name="a.7z")
    assert [(k.label, k.name, bytes(k.data)) for k in kids] == [
        (name, name.rsplit("/", 1)[-1], data) for name, data in MEMBERS
    ]
    assert all(k.meta["container"] == "7z" for k in kids)
    assert all(0 <= k.meta["compressed_size"] <= len(raw) for k in kids)
    assert ctx.unscanned_notes == [] and ctx.warnings == []


def test_directories_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as arc:
        arc.write(tmp_path / "folder", "folder")
        arc.writestr(b"inside", "folder/x.txt")
    kids, _ = run(extract_7z, buf.getvalue())
    assert [(k.label, bytes(k.data)) for k in kids] == [("folder/x.txt", b"inside")]


def _rename(raw: bytes, old: str, new: str) -> bytes:
    """Rename a member in a 7z with a plain (not encoded) header, fixing the CRCs."""
    assert len(old) == len(new)
    out = bytearray(raw.replace(old.encode("utf-16-le"), new.encode("utf-16-le")))
    offset, size = struct.unpack_from("<QQ", out, 12)
    header = out[32 + offset : 32 + offset + size]
    struct.pack_into("<L", out, 28, zlib.crc32(header))
    struct.pack_into("<L", out, 8, zlib.crc32(out[12:32]))
    return bytes(out)


def test_member_names_never_decide_whether_a_member_is_scanned() -> None:
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as arc:
        arc.set_encoded_header_mode(False)
        arc.writestr(b"MZ escaping", "xx/xx/escape.exe")
        arc.writestr(b"MZ absolute", "Xabs/path.exe")
    raw = _rename(buf.getvalue(), "xx/xx/escape.exe", "../../escape.exe")
    raw = _rename(raw, "Xabs/path.exe", "/abs/path.exe")
    kids, ctx = run(extract_7z, raw)
    assert [(k.label, bytes(k.data)) for k in kids] == [
        ("../../escape.exe", b"MZ escaping"),
        ("/abs/path.exe", b"MZ absolute"),
    ]
    assert ctx.warnings == []


def test_encrypted_header_is_unscanned() -> None:
    raw = _7z(MEMBERS, password=ARCHIVE_PASSWORD, header_encryption=True)
    kids, ctx = run(extract_7z, raw, name="locked.7z")
    assert kids == []
    assert ctx.unscanned_notes == [("locked.7z", "encrypted archive")]


def test_encrypted_members_are_unscanned() -> None:
    raw = _7z(MEMBERS, password=ARCHIVE_PASSWORD)
    kids, ctx = run(extract_7z, raw, name="locked.7z")
    assert all(bytes(k.data) == b"" for k in kids)
    notes = set(ctx.unscanned_notes)
    for name, data in MEMBERS:
        if data:
            assert (f"locked.7z/{name}", "encrypted archive") in notes


def test_oversized_declared_member_is_refused_with_its_solid_followers() -> None:
    members = [("small.txt", b"ok" * 100), ("huge.bin", bytes(3 * MiB)), ("after.txt", b"x")]
    ctx = make_ctx(max_total_bytes=2 * MiB)
    kids, ctx = run(extract_7z, _7z(members), name="s.7z", ctx=ctx)
    assert [k.label for k in kids] == ["small.txt"]
    notes = dict(ctx.unscanned_notes)
    assert notes["s.7z/huge.bin"].startswith("limit:")
    assert notes["s.7z/after.txt"].startswith("limit:")
    assert ctx.budget.total_bytes == 200  # nothing of the refused block was decoded


def test_ratio_limit_trips_while_streaming() -> None:
    ctx = make_ctx(max_ratio=50.0)
    with pytest.raises(LimitExceeded) as info:
        run(extract_7z, _7z([("zeros", bytes(20 * MiB))]), ctx=ctx)
    assert "ratio" in info.value.reason
    assert ctx.budget.total_bytes <= ctx.limits.ratio_floor + 2 * MiB


def test_damaged_archive_is_a_warning() -> None:
    raw = bytearray(_7z(MEMBERS))
    raw[40:60] = bytes(20)
    kids, ctx = run(extract_7z, bytes(raw))
    assert ctx.warnings
    assert all(bytes(k.data) in [d for _n, d in MEMBERS] for k in kids)
