"""The compact hash index."""

from __future__ import annotations

import hashlib

import pytest

from mailwarden.engine.signatures.hashindex import HashIndex, HashIndexBuilder


def _md5(data: bytes) -> bytes:
    return hashlib.md5(data, usedforsecurity=False).digest()


def _index(entries: list[tuple[bytes, int | None, str]]) -> HashIndex:
    builder = HashIndexBuilder(16)
    for payload, size, name in entries:
        builder.add(_md5(payload), size, name)
    return builder.build()


def test_lookup_by_digest_and_size() -> None:
    index = _index([(f"p{i}".encode(), i, f"Sig-{i}") for i in range(500)])
    assert len(index) == 500
    for i in (0, 1, 250, 499):
        assert index.lookup(_md5(f"p{i}".encode()), i) == f"Sig-{i}"
    assert index.lookup(_md5(b"p7"), 8) is None
    assert index.lookup(_md5(b"absent"), 7) is None


def test_sizes_gate_hashing() -> None:
    index = _index([(b"a", 10, "A"), (b"b", 20, "B")])
    assert index.wants_size(10)
    assert index.wants_size(20)
    assert not index.wants_size(15)
    assert not index.wildcard


def test_wildcard_size() -> None:
    index = _index([(b"a", None, "Any"), (b"b", 20, "B")])
    assert index.wildcard
    assert index.wants_size(12345)
    assert index.lookup(_md5(b"a"), 12345) == "Any"


def test_same_digest_different_sizes() -> None:
    index = _index([(b"a", 5, "Five"), (b"a", 6, "Six")])
    assert index.lookup(_md5(b"a"), 6) == "Six"
    assert index.lookup(_md5(b"a"), 5) == "Five"


def test_consecutive_names_are_stored_once() -> None:
    index = _index([(bytes([i]), i, "Same.Name") for i in range(100)])
    _, _, names = index.to_parts()
    assert names == b"Same.Name\x00"
    assert index.lookup(_md5(bytes([42])), 42) == "Same.Name"


def test_round_trip_through_parts() -> None:
    index = _index([(b"x", 1, "X"), (b"y", None, "Y")])
    copy = HashIndex.from_parts(16, *index.to_parts())
    assert copy.lookup(_md5(b"x"), 1) == "X"
    assert copy.lookup(_md5(b"y"), 99) == "Y"


def test_misaligned_parts_are_refused() -> None:
    records, sizes, names = _index([(b"x", 1, "X")]).to_parts()
    with pytest.raises(ValueError, match="misaligned"):
        HashIndex.from_parts(16, records[:-1], sizes, names)
    with pytest.raises(ValueError, match="misaligned"):
        HashIndex.from_parts(16, records, sizes[:-1], names)
