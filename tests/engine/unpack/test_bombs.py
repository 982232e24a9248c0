"""Decompression bombs and nesting: every one stops at a limit, in bounded memory.

Bombs are built here, compressed, without ever producing their expanded data.
The recursive driver (``unpack_support.walk``) treats limits as the walker does:
a non-fatal limit ends its subtree (noted unscanned), a fatal one ends the walk.
"""

from __future__ import annotations

import gzip
import io
import lzma
import struct
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from unpack_support import (
    MiB,
    deflated_zeros,
    make_ctx,
    sevenzip_zeros,
    walk,
    xz_zeros,
    zip64_single,
    zip_bytes,
)

from mailwarden.engine.limits import LimitExceeded
from mailwarden.engine.objects import WalkContext

GiB = 1024 * MiB
TOTAL = 50 * MiB
MEMORY_BOUND = 64 * MiB
#: no ratio limit, to show the total-bytes limit holds on its own
NO_RATIO = 1e12


def _bomb_ctx(**limits: Any) -> WalkContext:
    limits.setdefault("max_total_bytes", TOTAL)
    return make_ctx(**limits)


def _measure(data: bytes, ctx: WalkContext) -> tuple[LimitExceeded | None, int]:
    """Walk ``data``; return the fatal limit raised (if any) and the peak traced memory."""
    tracemalloc.start()
    try:
        walk(data, ctx)
        stopped = None
    except LimitExceeded as exc:
        stopped = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        ctx.close()
    # whatever stopped it, it stopped within one step of the total
    assert ctx.budget.total_bytes <= TOTAL + 2 * MiB
    return stopped, peak


def _assert_total_limit(data: bytes) -> None:
    ctx = _bomb_ctx(max_ratio=NO_RATIO)
    stopped, peak = _measure(data, ctx)
    assert stopped is not None and stopped.fatal
    assert stopped.reason == f"limit: more than {TOTAL} expanded bytes"
    assert peak < MEMORY_BOUND


def _assert_ratio_noted(data: bytes) -> WalkContext:
    """With the ratio limit on, the bomb ends as notes, before the total is spent."""
    ctx = _bomb_ctx()
    stopped, peak = _measure(data, ctx)
    reasons = [reason for _part, reason in ctx.unscanned_notes]
    assert any("expansion ratio" in r for r in reasons) or (
        stopped is not None and "expanded bytes" in stopped.reason
    )
    assert peak < MEMORY_BOUND
    return ctx


def _gzip_wrap(deflated: bytes, size: int) -> bytes:
    # the trailer's CRC is never reached: limits stop decoding long before
    return b"\x1f\x8b\x08\x00" + bytes(6) + deflated + struct.pack("<LL", 0, size % 2**32)


# -- builders ---------------------------------------------------------------


@pytest.fixture(scope="module")
def ten_gb_zip() -> bytes:
    return zip64_single("zeros.bin", deflated_zeros(10 * GiB), 10 * GiB)


def _nested_zip(levels: int, fanout: int, leaf_size: int) -> bytes:
    """42.zip-style: each level holds ``fanout`` copies of the level below."""
    data = zip_bytes([("0.bin", bytes(leaf_size))])
    for level in range(levels):
        data = zip_bytes([(f"{level}-{i}.zip", data) for i in range(fanout)])
    return data


def _overlapping_zip(copies: int) -> bytes:
    """Many directory entries pointing at the same member data."""
    one = zip_bytes([("zeros.bin", bytes(4 * MiB))])
    cd_at = one.find(b"PK\x01\x02")
    eocd_at = one.rfind(b"PK\x05\x06")
    entry = one[cd_at:eocd_at]
    cd = entry * copies
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, copies, copies, len(cd), cd_at, 0)
    return one[:cd_at] + cd + eocd


def _nest(wrap: Callable[[bytes], bytes], data: bytes, levels: int) -> bytes:
    for _ in range(levels):
        data = wrap(data)
    return data


# -- the bombs --------------------------------------------------------------


def test_ten_gigabyte_zip_member_hits_the_total(ten_gb_zip: bytes) -> None:
    assert len(ten_gb_zip) < 12 * MiB
    _assert_total_limit(ten_gb_zip)


def test_ten_gigabyte_zip_member_hits_the_ratio(ten_gb_zip: bytes) -> None:
    ctx = _assert_ratio_noted(ten_gb_zip)
    assert ctx.budget.total_bytes < 4 * MiB


def test_42_zip_style_nested_bomb() -> None:
    bomb = _nested_zip(levels=4, fanout=10, leaf_size=4 * MiB)  # 40 GB if fully expanded
    assert len(bomb) < 2 * MiB
    _assert_total_limit(bomb)
    ctx = _assert_ratio_noted(bomb)
    assert ctx.budget.files < 10**4


def test_overlapping_entries_bomb() -> None:
    _assert_total_limit(_overlapping_zip(copies=1000))


def test_gzip_of_gzip() -> None:
    inner = _gzip_wrap(deflated_zeros(10 * GiB), 10 * GiB)
    bomb = gzip.compress(inner, 9, mtime=0)
    assert len(bomb) < MiB
    _assert_total_limit(bomb)
    _assert_ratio_noted(bomb)


def test_xz_bomb() -> None:
    bomb = xz_zeros(96 * MiB)
    assert len(bomb) < MiB
    _assert_total_limit(bomb)
    _assert_ratio_noted(bomb)


def test_7z_bomb_is_refused_before_decoding() -> None:
    bomb = sevenzip_zeros(64 * MiB)
    assert len(bomb) < MiB
    ctx = _bomb_ctx(max_ratio=NO_RATIO)
    stopped, peak = _measure(bomb, ctx)
    assert stopped is None
    assert [r for _p, r in ctx.unscanned_notes] == [
        f"limit: declares {64 * MiB} bytes, over the {TOTAL} bytes left"
    ]
    assert ctx.budget.total_bytes == 0
    assert peak < MEMORY_BOUND


def test_7z_bomb_inside_a_zip_still_respects_the_budget() -> None:
    bomb = zip_bytes([(f"inner{i}.7z", sevenzip_zeros(20 * MiB)) for i in range(4)])
    ctx = _bomb_ctx(max_ratio=NO_RATIO)
    stopped, peak = _measure(bomb, ctx)
    # two fit in the budget; the others are refused before decoding a byte
    assert stopped is None
    refused = [p for p, r in ctx.unscanned_notes if r.startswith("limit: declares")]
    assert refused == ["message/inner2.7z/zeros.bin", "message/inner3.7z/zeros.bin"]
    # 40 MiB of zeros, plus the few KiB of the 7z archives themselves
    assert 40 * MiB < ctx.budget.total_bytes < 41 * MiB
    assert peak < MEMORY_BOUND


@pytest.mark.parametrize(
    ("name", "wrap"),
    [
        ("zip", lambda d: zip_bytes([("inner", d)])),
        ("gzip", lambda d: gzip.compress(d, mtime=0)),
        ("tar-in-xz", lambda d: lzma.compress(_tar_of(d))),
    ],
)
def test_nesting_beyond_max_depth_stops_the_subtree(
    name: str, wrap: Callable[[bytes], bytes]
) -> None:
    bomb = _nest(wrap, b"EICAR-like payload at the bottom", levels=20)
    ctx = make_ctx(max_depth=8)
    leaves = walk(bomb, ctx)
    assert leaves == []  # the payload is below the limit, never reached
    assert any("nesting depth over 8" in r for _p, r in ctx.unscanned_notes), name


def _tar_of(data: bytes) -> bytes:
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("inner")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_nesting_within_the_limit_reaches_the_payload() -> None:
    bomb = _nest(lambda d: zip_bytes([("inner", d)], zipfile.ZIP_DEFLATED), b"\x01payload", 6)
    leaves = walk(bomb, make_ctx(max_depth=8))
    assert [leaf.data for leaf in leaves] == [b"\x01payload"]
    assert leaves[0].part.count("/") == 6


def test_many_small_members_hit_the_file_limit() -> None:
    members: Iterator[tuple[str, bytes]] = ((f"f{i}", b"\x01") for i in range(300))
    bomb = zip_bytes(list(members), zipfile.ZIP_STORED)
    with pytest.raises(LimitExceeded) as info:
        walk(bomb, make_ctx(max_files=100))
    assert info.value.fatal and "files" in info.value.reason


def test_deflate_stream_helper_really_is_zeros() -> None:
    raw = deflated_zeros(8 * MiB)
    out = zlib.decompressobj(-15).decompress(raw)
    assert out == bytes(8 * MiB)
