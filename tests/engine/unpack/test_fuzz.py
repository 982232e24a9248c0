"""Fuzzing the extractors with mutated real archives: only LimitExceeded may escape.

Each seed is a small valid archive built here; hypothesis flips, truncates,
inserts and duplicates bytes, and every extractor must come back with children,
warnings or unscanned notes, never another exception.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import io
import lzma
import tarfile
import zipfile

import py7zr
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unpack_support import MiB, make_ctx, rar4_stored, zip_bytes

from mailwarden.engine.filetype import ARCHIVE_KINDS, FileKind
from mailwarden.engine.limits import LimitExceeded
from mailwarden.engine.objects import ScanObject
from mailwarden.engine.unpack import EXTRACTORS, Extractor
from mailwarden.engine.unpack.compress import extract_bzip2, extract_gzip, extract_xz
from mailwarden.engine.unpack.rar import extract_rar
from mailwarden.engine.unpack.sevenzip import extract_7z
from mailwarden.engine.unpack.tar import extract_tar
from mailwarden.engine.unpack.zip import extract_zip

MEMBERS = [("a/readme.txt", b"hello archive " * 40), ("b.exe", b"MZ" + bytes(range(256)) * 4)]
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in MEMBERS:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _7z() -> bytes:
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as arc:
        for name, data in MEMBERS:
            arc.writestr(data, name)
    return buf.getvalue()


@functools.cache
def _seeds() -> dict[str, tuple[Extractor, list[bytes]]]:
    payload = _tar()
    zips = [
        zip_bytes(MEMBERS, method)
        for method in (
            zipfile.ZIP_STORED,
            zipfile.ZIP_DEFLATED,
            zipfile.ZIP_BZIP2,
            zipfile.ZIP_LZMA,
        )
    ]
    return {
        "zip": (extract_zip, zips),
        "tar": (extract_tar, [payload]),
        "gzip": (extract_gzip, [gzip.compress(payload, mtime=0) * 2]),
        "bzip2": (extract_bzip2, [bz2.compress(payload)]),
        "xz": (extract_xz, [lzma.compress(payload)]),
        "7z": (extract_7z, [_7z()]),
        "rar": (extract_rar, [rar4_stored(MEMBERS)]),
    }


@st.composite
def _mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "dup"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80]))
        elif op == "cut":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif op == "dup":
            end = min(len(data), at + draw(st.integers(1, 512)))
            data[at:at] = data[at:end]
    return bytes(data)


def _exercise(extract: Extractor, data: bytes) -> None:
    ctx = make_ctx(max_total_bytes=8 * MiB, max_seconds=10.0)
    try:
        for kid in extract(ScanObject(data, path=("fuzz",), name="fuzz.bin"), ctx):
            assert isinstance(kid.label, str)
            assert len(kid.data) >= 0
    except LimitExceeded as exc:
        assert exc.reason.startswith("limit:")
    finally:
        ctx.close()


@pytest.mark.parametrize("kind", ["zip", "tar", "gzip", "bzip2", "xz", "7z", "rar"])
@FUZZ
@given(data=st.data())
def test_mutated_archive_into_its_own_extractor(kind: str, data: st.DataObject) -> None:
    extract, seeds = _seeds()[kind]
    _exercise(extract, data.draw(st.sampled_from(seeds).flatmap(_mutated)))


@settings(FUZZ, max_examples=100)
@given(
    st.sampled_from([seed for _e, seeds in _seeds().values() for seed in seeds]).flatmap(_mutated),
    st.sampled_from(sorted(ARCHIVE_KINDS & EXTRACTORS.keys())),
)
def test_any_archive_into_any_extractor(data: bytes, kind: FileKind) -> None:
    _exercise(EXTRACTORS[kind], data)


@settings(FUZZ, max_examples=100)
@given(st.binary(max_size=2048))
def test_random_bytes_into_every_extractor(data: bytes) -> None:
    for extract in _seeds().values():
        _exercise(extract[0], data)
