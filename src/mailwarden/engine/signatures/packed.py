"""Column storage for big signature tables: packed strings and integer columns.

A database of ClamAV's size has hundreds of thousands of body signatures; one
Python object each costs more memory than the signatures themselves.  The
tables therefore keep them in columns:

* :class:`Packed` holds many byte strings in one buffer plus one column of end
  offsets (entry ``i`` is ``data[ends[i-1]:ends[i]]``), built with
  :class:`PackedBuilder`;
* integer columns are ``array.array`` while building and, after a cached load,
  ``memoryview`` casts straight onto the mapped cache file (no copy, no
  per-entry object).

:func:`column_bytes` / :func:`column_from` move a column in and out of the
cache; :func:`packed_parts` / :func:`packed_from` do the same for
:class:`Packed`.  Columns are in this machine's byte order; the loader keys
the cache by it.

SECURITY: :func:`column_from` and :func:`packed_from` take bytes from the
cache file, which may be damaged: lengths, alignment and the monotony of end
offsets are checked and ``ValueError`` is raised on anything inconsistent.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Literal

#: What a table column or string store may live in: built bytes, or a cache mapping.
Blob = bytes | bytearray | memoryview

Code = Literal["B", "I"]
#: u8 flags, u32 indexes and offsets (tables stay far below 4 GB).
U8: Code = "B"
U32: Code = "I"
if array(U32).itemsize != 4:  # pragma: no cover - every supported platform has 32-bit int
    raise ImportError("array('I') is not 32 bits on this platform")


def new_column(code: Code, values: Iterable[int] = ()) -> array[int]:
    return array(code, values)


def column_bytes(col: Sequence[int]) -> bytes:
    if isinstance(col, array):
        return col.tobytes()
    if isinstance(col, memoryview):
        return col.tobytes()
    return array(U32, col).tobytes()


def column_from(blob: Blob, code: Code, count: int | None = None) -> Sequence[int]:
    """A read-only column over ``blob`` (no copy); ``count`` checks its length."""
    view = memoryview(blob)
    size = array(code).itemsize
    if view.nbytes % size:
        raise ValueError("cached column is misaligned")
    col: memoryview[int] = view.cast("B").cast(code)
    if count is not None and len(col) != count:
        raise ValueError("cached column has the wrong length")
    return col


class Packed:
    """Byte strings stored end to end; see the module docstring."""

    __slots__ = ("_data", "_ends")

    def __init__(self, data: Blob = b"", ends: Sequence[int] = ()) -> None:
        self._data = data
        self._ends = ends

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, i: int) -> bytes:
        ends = self._ends
        start = ends[i - 1] if i > 0 else 0
        return bytes(self._data[start : ends[i]])

    def __iter__(self) -> Iterator[bytes]:
        return (self[i] for i in range(len(self)))


class PackedBuilder:
    """Appends byte strings to one buffer."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.ends = new_column(U32)

    def __len__(self) -> int:
        return len(self.ends)

    def append(self, item: bytes) -> int:
        self.data += item
        self.ends.append(len(self.data))
        return len(self.ends) - 1

    def build(self) -> Packed:
        return Packed(bytes(self.data), self.ends)


def packed_parts(packed: Packed) -> tuple[Blob, bytes]:
    return packed._data, column_bytes(packed._ends)


def packed_from(data: Blob, ends_blob: Blob, count: int) -> Packed:
    ends = column_from(ends_blob, U32, count)
    if count and ends[count - 1] != len(memoryview(data)):
        raise ValueError("cached strings do not fill their buffer")
    # ends must not decrease, or a slice would come out empty or reversed
    prev = 0
    for end in ends:
        if end < prev:
            raise ValueError("cached string offsets decrease")
        prev = end
    return Packed(data, ends)


def encode_atoms(atoms: Sequence[bytes]) -> bytes:
    """Several literals as one string: ``u16 length | bytes`` each."""
    return b"".join(len(a).to_bytes(2, "big") + a for a in atoms)


def decode_atoms(blob: bytes) -> tuple[bytes, ...]:
    out: list[bytes] = []
    pos = 0
    while pos + 2 <= len(blob):
        n = int.from_bytes(blob[pos : pos + 2], "big")
        out.append(blob[pos + 2 : pos + 2 + n])
        pos += 2 + n
    if pos != len(blob):
        raise ValueError("cached atoms are damaged")
    return tuple(out)
