"""Tests for the zip extractor: methods, zip64, broken directories, encryption, limits."""

from __future__ import annotations

import io
import random
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from unpack_support import MiB, make_ctx, run, set_zip_encrypted, zip_bytes

from mailwarden.engine.limits import LimitExceeded
from mailwarden.engine.unpack.zip import extract_zip

TESTFILES = Path("/usr/share/clamav-testfiles")


def _payload(n: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    words = [b"alpha", b"beta", b"gamma", b"MZ\x90\x00", b"\x00\xff", b"delta"]
    return b" ".join(rng.choice(words) for _ in range(n))


@pytest.mark.parametrize(
    "method",
    [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA],
)
def test_members_come_out_intact_for_each_method(method: int) -> None:
    members = [("docs/readme.txt", _payload(500)), ("bin/tool.exe", _payload(3000, seed=2))]
    kids, ctx = run(extract_zip, zip_bytes(members, method), name="a.zip")
    assert [(k.label, k.name, bytes(k.data)) for k in kids] == [
        (name, name.rsplit("/", 1)[1], data) for name, data in members
    ]
    assert all(k.meta["container"] == "zip" for k in kids)
    assert all(0 < k.meta["compressed_size"] <= len(zip_bytes(members, method)) for k in kids)
    assert ctx.unscanned_notes == [] and ctx.warnings == []


def test_directory_entries_are_skipped_but_empty_files_are_not() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.mkdir("folder")
        zf.writestr("folder/empty.txt", b"")
        zf.writestr("folder/x.bin", b"data")
    kids, _ = run(extract_zip, buf.getvalue())
    assert [(k.label, bytes(k.data)) for k in kids] == [
        ("folder/empty.txt", b""),
        ("folder/x.bin", b"data"),
    ]


def test_zip64_archive() -> None:
    buf = io.BytesIO()
    with (
        zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open("big.bin", "w", force_zip64=True) as fh,
    ):
        fh.write(_payload(2000))
    raw = buf.getvalue()
    assert raw[4] == 45  # "version needed" of a zip64 local header
    kids, _ = run(extract_zip, raw)
    assert bytes(kids[0].data) == _payload(2000)


def test_prepended_stub_like_a_self_extractor() -> None:
    members = [("inside.txt", b"hello from inside")]
    raw = b"MZ" + bytes(1000) + zip_bytes(members)
    kids, _ = run(extract_zip, raw)
    assert [(k.label, bytes(k.data)) for k in kids] == members


def test_broken_central_directory_falls_back_to_local_headers() -> None:
    members = [("one.txt", _payload(300)), ("two.exe", _payload(400, seed=3))]
    raw = zip_bytes(members)
    cut = raw[: raw.rfind(b"PK\x01\x02") - 10]  # lose the directory entirely
    kids, ctx = run(extract_zip, cut)
    assert [(k.label, bytes(k.data)) for k in kids] == members
    assert any("central directory" in msg for _part, msg in ctx.warnings)


class _Unseekable(io.RawIOBase):
    def __init__(self) -> None:
        self.buf = io.BytesIO()

    def writable(self) -> bool:
        return True

    def write(self, b: object) -> int:
        return self.buf.write(b)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_local_headers_with_data_descriptors(method: int) -> None:
    sink = _Unseekable()
    members = [("a.txt", _payload(200)), ("b.txt", _payload(250, seed=5))]
    with zipfile.ZipFile(sink, "w", compression=method) as zf:
        for name, data in members:
            zf.writestr(name, data)
    raw = sink.buf.getvalue()
    assert raw[6] & 0x08  # sizes follow the data, not in the local header
    cut = raw[: raw.find(b"PK\x01\x02")]
    kids, _ = run(extract_zip, cut)
    assert [(k.label, bytes(k.data)) for k in kids] == members


def test_encrypted_members_are_reported_not_yielded() -> None:
    raw = set_zip_encrypted(zip_bytes([("secret.exe", b"MZ payload"), ("note.txt", b"x")]))
    kids, ctx = run(extract_zip, raw, name="outer.zip")
    assert kids == []
    assert ctx.unscanned_notes == [
        ("outer.zip/secret.exe", "encrypted archive"),
        ("outer.zip/note.txt", "encrypted archive"),
    ]


@pytest.mark.skipif(shutil.which("7z") is None, reason="p7zip-full not installed")
@pytest.mark.parametrize("cipher", ["ZipCrypto", "AES256"])
def test_really_encrypted_zip_from_7z(tmp_path: Path, cipher: str) -> None:
    (tmp_path / "evil.exe").write_bytes(b"MZ" + bytes(100))
    out = tmp_path / "enc.zip"
    subprocess.run(
        ["7z", "a", "-tzip", "-psecret", f"-mem={cipher}", str(out), "evil.exe"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    kids, ctx = run(extract_zip, out.read_bytes(), name="enc.zip")
    assert kids == []
    assert ctx.unscanned_notes == [("enc.zip/evil.exe", "encrypted archive")]


def test_unknown_method_is_unscanned() -> None:
    raw = bytearray(zip_bytes([("a.bin", b"abc")], zipfile.ZIP_STORED))
    for sig, at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        pos = raw.find(sig)
        raw[pos + at] = 93  # zstd
    kids, ctx = run(extract_zip, bytes(raw), name="z.zip")
    assert kids == []
    assert ctx.unscanned_notes == [("z.zip/a.bin", "unsupported compression (zip method 93)")]


@pytest.mark.skipif(not (TESTFILES / "clam.d64.zip").exists(), reason="clamav-testfiles missing")
def test_deflate64_member_matches_the_deflate_one() -> None:
    plain, _ = run(extract_zip, (TESTFILES / "clam.zip").read_bytes())
    d64, ctx = run(extract_zip, (TESTFILES / "clam.d64.zip").read_bytes())
    assert ctx.unscanned_notes == []
    assert [bytes(k.data) for k in d64] == [bytes(k.data) for k in plain]
    assert bytes(d64[0].data).startswith(b"MZ")


def test_corrupt_member_keeps_the_others() -> None:
    good = _payload(400, seed=7)
    raw = bytearray(zip_bytes([("bad.bin", _payload(400)), ("good.bin", good)]))
    data_at = raw.find(b"bad.bin") + len(b"bad.bin")
    raw[data_at : data_at + 20] = b"\xff" * 20
    kids, ctx = run(extract_zip, bytes(raw))
    assert ("good.bin", good) in [(k.label, bytes(k.data)) for k in kids]
    assert any("corrupt" in msg for _p, msg in ctx.warnings)


def test_more_listed_members_than_files_allowed_is_a_fatal_limit() -> None:
    raw = zip_bytes([(f"f{i}.txt", b"") for i in range(30)])
    with pytest.raises(LimitExceeded) as info:
        run(extract_zip, raw, ctx=make_ctx(max_files=10))
    assert info.value.fatal and "files" in info.value.reason


def test_high_ratio_member_trips_the_ratio_limit() -> None:
    raw = zip_bytes([("zeros.bin", bytes(8 * MiB))])
    ctx = make_ctx(max_ratio=50.0)
    with pytest.raises(LimitExceeded) as info:
        run(extract_zip, raw, ctx=ctx)
    assert "ratio" in info.value.reason
    # stopped within a step or two of the ratio floor, not after inflating it all
    assert ctx.budget.total_bytes <= ctx.limits.ratio_floor + 2 * MiB


def test_garbage_is_a_warning_not_an_exception() -> None:
    kids, ctx = run(extract_zip, b"PK\x03\x04" + bytes(10))
    assert kids == []
    assert ctx.warnings
