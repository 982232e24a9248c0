"""Spool spills to an unlinked file past the threshold; BufferReader reads without copying."""

from __future__ import annotations

import io
import mmap
import zipfile

import pytest

from mailwarden.engine.limits import LimitExceeded, Limits
from mailwarden.engine.objects import BufferReader, WalkContext


def test_spool_stays_in_memory_below_threshold() -> None:
    ctx = WalkContext(Limits(spool_threshold=4096))
    spool = ctx.spool()
    spool.write(b"a" * 100)
    assert spool.getvalue() == b"a" * 100
    assert ctx.budget.total_bytes == 100


def test_spool_spills_to_a_mapped_file_and_closes_it() -> None:
    ctx = WalkContext(Limits(spool_threshold=4096))
    spool = ctx.spool()
    for _ in range(10):
        spool.write(b"x" * 1000)
    value = spool.getvalue()
    assert isinstance(value, mmap.mmap)
    assert len(value) == 10_000 and value[:3] == b"xxx" and value[-1:] == b"x"
    ctx.close()
    assert value.closed


def test_spool_charges_the_budget_while_writing() -> None:
    ctx = WalkContext(Limits(max_total_bytes=1000))
    spool = ctx.spool()
    spool.write(b"y" * 1000)
    with pytest.raises(LimitExceeded):
        spool.write(b"y")


def test_buffer_reader_serves_zipfile_from_mmap_and_bytes() -> None:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as zf:
        zf.writestr("a.txt", "hello")
    data = raw.getvalue()
    with zipfile.ZipFile(BufferReader(data)) as zf:
        assert zf.read("a.txt") == b"hello"
    ctx2 = WalkContext(Limits(spool_threshold=16))
    spool2 = ctx2.spool()
    spool2.write(data)
    mapped = spool2.getvalue()
    assert isinstance(mapped, mmap.mmap)
    reader = BufferReader(mapped)
    with zipfile.ZipFile(reader) as zf:
        assert zf.read("a.txt") == b"hello"
    reader.close()
    ctx2.close()
