"""The PE section-table reader."""

from __future__ import annotations

import struct

import feature_samples as fs
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.engine.signatures.pe import pe_sections


def test_reads_the_section_of_a_minimal_pe() -> None:
    data = fs._pe(b"marker")
    assert pe_sections(data) == [(0x200, 0x200)]
    assert data[0x201:0x207] == b"marker"


def test_section_clipped_to_file() -> None:
    data = fs._pe(b"marker")[:0x300]
    assert pe_sections(data) == [(0x200, 0x100)]


def test_not_a_pe() -> None:
    assert pe_sections(b"") == []
    assert pe_sections(b"MZ" + b"\x00" * 100) == []
    bad = bytearray(fs._pe(b"x"))
    struct.pack_into("<I", bad, 0x3C, 0xFFFFFFF0)
    assert pe_sections(bytes(bad)) == []


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1024))
def test_garbage_after_a_valid_header_never_raises(tail: bytes) -> None:
    head = fs._pe(b"x")[: 0x40 + 24]
    for off, size in pe_sections(head + tail):
        assert size > 0
        assert off + size <= len(head + tail)
