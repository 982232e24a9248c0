"""Tests for the tar extractor: regular files only, damage tolerance, header cap."""

from __future__ import annotations

import io
import tarfile

import pytest
from unpack_support import make_ctx, run

from mailwarden.engine.limits import LimitExceeded
from mailwarden.engine.unpack.tar import extract_tar


def _tar(entries: list[tarfile.TarInfo], payloads: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info in entries:
            data = payloads.get(info.name)
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return buf.getvalue()


def _info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


def test_only_regular_files_are_yielded() -> None:
    payloads = {"dir/a.txt": b"alpha" * 100, "b.exe": b"MZ" + bytes(3000)}
    entries = [
        _info("dir", tarfile.DIRTYPE),
        _info("dir/a.txt"),
        _info("sym", tarfile.SYMTYPE, "/etc/passwd"),
        _info("hard", tarfile.LNKTYPE, "dir/a.txt"),
        _info("fifo", tarfile.FIFOTYPE),
        _info("dev", tarfile.CHRTYPE),
        _info("b.exe"),
    ]
    kids, ctx = run(extract_tar, _tar(entries, payloads), name="x.tar")
    assert [(k.label, k.name, bytes(k.data)) for k in kids] == [
        ("dir/a.txt", "a.txt", payloads["dir/a.txt"]),
        ("b.exe", "b.exe", payloads["b.exe"]),
    ]
    assert all(k.meta == {"compressed_size": len(k.data), "container": "tar"} for k in kids)
    assert ctx.warnings == []


def test_long_names_survive() -> None:
    name = "deep/" * 40 + "file.txt"
    kids, _ = run(extract_tar, _tar([_info(name)], {name: b"long"}))
    assert [(k.label, k.name) for k in kids] == [(name, "file.txt")]


def test_truncated_archive_keeps_earlier_members() -> None:
    payloads = {"first.txt": b"1" * 700, "second.txt": b"2" * 5000}
    raw = _tar([_info("first.txt"), _info("second.txt")], payloads)
    cut = raw[: 512 + 1024 + 512 + 1000]  # into the second member's data
    kids, ctx = run(extract_tar, cut)
    labels = [k.label for k in kids]
    assert labels[0] == "first.txt" and bytes(kids[0].data) == payloads["first.txt"]
    assert "second.txt" not in labels or ctx.warnings
    assert ctx.warnings


def test_not_a_tar_is_a_warning() -> None:
    kids, ctx = run(extract_tar, b"this is not a tar archive at all" * 20)
    assert kids == [] and ctx.warnings


def test_header_count_is_capped() -> None:
    raw = _tar([_info(f"d{i}", tarfile.DIRTYPE) for i in range(25)], {})
    with pytest.raises(LimitExceeded) as info:
        run(extract_tar, raw, ctx=make_ctx(max_files=10))
    assert info.value.fatal
