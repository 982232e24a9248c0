"""Column storage: packed strings, integer columns and their cache form."""

from __future__ import annotations

import pytest

from mailwarden.engine.signatures.packed import (
    U8,
    U32,
    PackedBuilder,
    column_bytes,
    column_from,
    decode_atoms,
    encode_atoms,
    new_column,
    packed_from,
    packed_parts,
)


def test_packed_strings_round_trip_through_their_cache_form() -> None:
    builder = PackedBuilder()
    items = [b"alpha", b"", b"\x00\xff", b"omega" * 50]
    assert [builder.append(x) for x in items] == [0, 1, 2, 3]
    packed = builder.build()
    assert list(packed) == items
    data, ends = packed_parts(packed)
    again = packed_from(memoryview(data), memoryview(ends), len(items))
    assert [again[i] for i in range(len(items))] == items


def test_columns_cast_in_place() -> None:
    col = new_column(U32, [0, 1, 2**32 - 1])
    view = column_from(memoryview(column_bytes(col)), U32, 3)
    assert list(view) == [0, 1, 2**32 - 1]
    assert list(column_from(bytes([1, 2, 3]), U8)) == [1, 2, 3]


@pytest.mark.parametrize(
    ("blob", "count"),
    [(b"\x00" * 7, None), (b"\x00" * 8, 3)],
)
def test_misaligned_or_short_columns_are_refused(blob: bytes, count: int | None) -> None:
    with pytest.raises(ValueError):
        column_from(blob, U32, count)


def test_damaged_string_offsets_are_refused() -> None:
    with pytest.raises(ValueError, match="decrease"):
        packed_from(b"abcdef", column_bytes(new_column(U32, [4, 2, 6])), 3)
    with pytest.raises(ValueError, match="fill"):
        packed_from(b"abcdef", column_bytes(new_column(U32, [2, 4])), 2)


def test_atoms_encode_and_decode() -> None:
    atoms = (b"abc", b"", b"\x00" * 300)
    assert decode_atoms(encode_atoms(atoms)) == atoms
    assert decode_atoms(b"") == ()
    with pytest.raises(ValueError):
        decode_atoms(b"\x00\x05ab")
