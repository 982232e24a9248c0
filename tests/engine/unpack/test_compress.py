"""Tests for the gzip, bzip2 and xz single-stream extractors."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import random
import struct
import zlib
from collections.abc import Callable

import pytest
from unpack_support import MiB, make_ctx, run

from mailwarden.engine.limits import LimitExceeded
from mailwarden.engine.unpack import Extractor
from mailwarden.engine.unpack.compress import extract_bzip2, extract_gzip, extract_xz

Pack = Callable[[bytes], bytes]

#: each extractor with the standard library compressor that makes its input
STREAMS: list[tuple[Extractor, Pack]] = [
    (extract_gzip, lambda d: gzip.compress(d, mtime=0)),
    (extract_bzip2, bz2.compress),
    (extract_xz, lzma.compress),
]

PAYLOAD = random.Random(3).randbytes(5000) + b"tail" * 3000


def _gzip(data: bytes, fname: str | None = None) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename=fname or "", mode="wb", fileobj=buf, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


def test_gzip_label_from_the_header_name() -> None:
    kids, ctx = run(extract_gzip, _gzip(PAYLOAD, "report.pdf"), name="mail.gz")
    assert [(k.label, k.name, bytes(k.data)) for k in kids] == [
        ("report.pdf", "report.pdf", PAYLOAD)
    ]
    assert kids[0].meta == {
        "compressed_size": len(_gzip(PAYLOAD, "report.pdf")),
        "container": "gzip",
    }
    assert ctx.warnings == []


@pytest.mark.parametrize(
    ("outer", "label"),
    [("data.tgz", "data.tar"), ("Data.GZ", "Data"), ("x.bin", "gunzip"), (None, "gunzip")],
)
def test_gzip_label_from_the_outer_name(outer: str | None, label: str) -> None:
    kids, _ = run(extract_gzip, gzip.compress(PAYLOAD, mtime=0), name=outer)
    assert kids[0].label == label


@pytest.mark.parametrize(
    ("extract", "outer", "label"),
    [
        (extract_bzip2, "a.tbz2", "a.tar"),
        (extract_bzip2, None, "bunzip2"),
        (extract_xz, "b.xz", "b"),
    ],
)
def test_other_labels(extract: object, outer: str | None, label: str) -> None:
    packed = bz2.compress(PAYLOAD) if extract is extract_bzip2 else lzma.compress(PAYLOAD)
    kids, _ = run(extract, packed, name=outer)  # type: ignore[arg-type]
    assert kids[0].label == label and bytes(kids[0].data) == PAYLOAD


def test_gzip_header_with_extra_field_and_name() -> None:
    body = zlib.compressobj(6, zlib.DEFLATED, -15)
    deflated = body.compress(b"hello") + body.flush()
    extra = b"AB" + struct.pack("<H", 3) + b"xyz"
    head = b"\x1f\x8b\x08" + bytes([0x04 | 0x08]) + bytes(6) + struct.pack("<H", len(extra)) + extra
    raw = head + b"named.txt\x00" + deflated + struct.pack("<LL", zlib.crc32(b"hello"), 5)
    kids, _ = run(extract_gzip, raw)
    assert [(k.label, bytes(k.data)) for k in kids] == [("named.txt", b"hello")]


@pytest.mark.parametrize(("extract", "pack"), STREAMS)
def test_concatenated_streams_decode_to_one_payload(extract: Extractor, pack: Pack) -> None:
    raw = pack(b"first part|") + pack(b"second part")
    kids, ctx = run(extract, raw)
    assert [bytes(k.data) for k in kids] == [b"first part|second part"]
    assert ctx.warnings == []


def test_xz_stream_padding_is_fine() -> None:
    raw = lzma.compress(b"a") + bytes(8) + lzma.compress(b"b") + bytes(4)
    kids, ctx = run(extract_xz, raw)
    assert [bytes(k.data) for k in kids] == [b"ab"] and ctx.warnings == []


def test_trailing_junk_is_ignored_with_a_warning() -> None:
    kids, ctx = run(extract_gzip, gzip.compress(PAYLOAD, mtime=0) + b"junk after the end")
    assert bytes(kids[0].data) == PAYLOAD
    assert any("trailing" in msg for _p, msg in ctx.warnings)


@pytest.mark.parametrize(("extract", "pack"), STREAMS)
def test_truncated_stream_yields_a_prefix(extract: Extractor, pack: Pack) -> None:
    data = random.Random(9).randbytes(300_000)
    raw = pack(data)
    kids, ctx = run(extract, raw[: len(raw) * 2 // 3])
    assert ctx.warnings
    out = bytes(kids[0].data) if kids else b""
    assert data.startswith(out)


def test_corrupt_gzip_yields_what_decoded_before_the_damage() -> None:
    data = random.Random(4).randbytes(200_000)
    raw = bytearray(gzip.compress(data, mtime=0))
    raw[150_000:150_100] = b"\x00" * 100
    kids, ctx = run(extract_gzip, bytes(raw))
    assert any("corrupt" in msg or "truncated" in msg for _p, msg in ctx.warnings)
    # everything before the damaged spot came out as it went in
    assert kids and bytes(kids[0].data[:100_000]) == data[:100_000]


def test_empty_payload_still_yields_an_empty_child() -> None:
    kids, _ = run(extract_gzip, gzip.compress(b"", mtime=0))
    assert [bytes(k.data) for k in kids] == [b""]


def test_not_compressed_at_all_is_a_warning() -> None:
    kids, ctx = run(extract_bzip2, b"BZh9 but nothing valid follows" * 3)
    assert kids == [] and ctx.warnings


def test_large_output_spills_to_a_mapped_file() -> None:
    data = random.Random(5).randbytes(3 * MiB)
    ctx = make_ctx(spool_threshold=MiB)
    kids, ctx = run(extract_gzip, gzip.compress(data, 1, mtime=0), ctx=ctx)
    assert not isinstance(kids[0].data, bytes)
    assert kids[0].data[:] == data
    ctx.close()


def test_ratio_limit_trips_while_streaming() -> None:
    ctx = make_ctx(max_ratio=100.0)
    with pytest.raises(LimitExceeded) as info:
        run(extract_bzip2, bz2.compress(bytes(30 * MiB)), ctx=ctx)
    assert "ratio" in info.value.reason
    assert ctx.budget.total_bytes <= ctx.limits.ratio_floor + 2 * MiB
