"""A compact, sorted index of hash signatures (``.hdb .hsb .mdb .msb .fp .sfp``).

Millions of hash signatures must fit in little memory, so an index keeps no
Python object per entry: one ``bytes`` blob of fixed-width records
``digest | size (8 bytes, big-endian; all ones = any size) | name offset (4)``
sorted by digest and searched by bisection, a sorted ``array`` of the
distinct sizes (so a payload is hashed only when some signature has its size,
unless a wildcard-size entry exists), and one blob of NUL-terminated names.

Building: :class:`HashIndexBuilder` collects lines as they are parsed;
:meth:`HashIndexBuilder.build` sorts once and returns a :class:`HashIndex`.
:meth:`HashIndex.to_parts` / :meth:`HashIndex.from_parts` move an index in and
out of the cache without re-parsing.

SECURITY: digests and sizes come from database files; lookups take hostile
payload digests and only compare bytes.  :meth:`HashIndex.from_parts`
validates sizes and alignment before trusting cached blobs.
"""

from __future__ import annotations

import bisect
from array import array

WILDCARD_SIZE = (1 << 64) - 1
_SIZE_BYTES = 8
_NAME_BYTES = 4


class HashIndexBuilder:
    """Accumulates (digest, size, name) entries of one digest length."""

    def __init__(self, digest_len: int) -> None:
        self.digest_len = digest_len
        self._records: list[bytes] = []
        self._names = bytearray()
        self._last_name: bytes | None = None
        self._last_off = 0

    def __len__(self) -> int:
        return len(self._records)

    def add(self, digest: bytes, size: int | None, name: str) -> None:
        """Add one entry; ``size`` None is a wildcard (any size)."""
        raw = name.encode("utf-8", "surrogateescape")
        if raw != self._last_name:
            self._last_off = len(self._names)
            self._names += raw + b"\x00"
            self._last_name = raw
        sz = WILDCARD_SIZE if size is None else size
        self._records.append(
            digest + sz.to_bytes(_SIZE_BYTES, "big") + self._last_off.to_bytes(_NAME_BYTES, "big")
        )

    def build(self) -> HashIndex:
        records = self._records
        records.sort()
        sizes = sorted(
            {
                int.from_bytes(r[self.digest_len : self.digest_len + _SIZE_BYTES], "big")
                for r in records
            }
        )
        blob = b"".join(records)
        self._records = []
        return HashIndex(self.digest_len, blob, array("Q", sizes), bytes(self._names))


class HashIndex:
    """Sorted fixed-width hash records; see the module docstring."""

    def __init__(self, digest_len: int, records: bytes, sizes: array[int], names: bytes) -> None:
        self.digest_len = digest_len
        self._width = digest_len + _SIZE_BYTES + _NAME_BYTES
        self._records = records
        self._sizes = sizes
        self._names = names
        self.wildcard = bool(sizes) and sizes[-1] == WILDCARD_SIZE

    def __len__(self) -> int:
        return len(self._records) // self._width

    def wants_size(self, size: int) -> bool:
        """True when some entry has this size (or any size): worth hashing."""
        if self.wildcard:
            return True
        i = bisect.bisect_left(self._sizes, size)
        return i < len(self._sizes) and self._sizes[i] == size

    def _digest_at(self, i: int) -> bytes:
        start = i * self._width
        return self._records[start : start + self.digest_len]

    def lookup(self, digest: bytes, size: int) -> str | None:
        """The name of an entry with this digest and size (or any size), else None."""
        lo, hi = 0, len(self)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._digest_at(mid) < digest:
                lo = mid + 1
            else:
                hi = mid
        while lo < len(self) and self._digest_at(lo) == digest:
            start = lo * self._width + self.digest_len
            sz = int.from_bytes(self._records[start : start + _SIZE_BYTES], "big")
            if sz in (size, WILDCARD_SIZE):
                name_at = start + _SIZE_BYTES
                off = int.from_bytes(self._records[name_at : name_at + _NAME_BYTES], "big")
                end = self._names.index(b"\x00", off)
                return self._names[off:end].decode("utf-8", "surrogateescape")
            lo += 1
        return None

    def to_parts(self) -> tuple[bytes, bytes, bytes]:
        return self._records, self._sizes.tobytes(), self._names

    @classmethod
    def from_parts(cls, digest_len: int, records: bytes, sizes: bytes, names: bytes) -> HashIndex:
        width = digest_len + _SIZE_BYTES + _NAME_BYTES
        if len(records) % width or len(sizes) % 8:
            raise ValueError("hash index parts are misaligned")
        size_arr = array("Q")
        size_arr.frombytes(sizes)
        return cls(digest_len, records, size_arr, names)
