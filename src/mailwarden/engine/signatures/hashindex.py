"""A compact, sorted index of hash signatures (``.hdb .hsb .mdb .msb .fp .sfp``).

Millions of hash signatures must fit in little memory, so an index keeps no
Python object per entry: one ``bytes`` blob of fixed-width records
``digest | size (8 bytes, big-endian; all ones = any size) | name offset (4)``
sorted by digest and searched by bisection, a bitmap over the sizes that
occur (so a payload is hashed only when some signature may have its size;
a false positive costs one needless hash, never a wrong answer), and one
blob of NUL-terminated names.

Building: :class:`HashIndexBuilder` appends records to one ``bytearray`` as
lines are parsed; :meth:`HashIndexBuilder.build` sorts them bucket by bucket
(by the first digest byte), so at most 1/256 of the records exist as Python
objects at any time.  :meth:`HashIndex.to_parts` / :meth:`HashIndex.from_parts`
move an index in and out of the cache without re-parsing; a cached index
works on ``memoryview`` slices of the mapped cache file, so a lookup touches
only the few pages its bisection visits.

SECURITY: digests and sizes come from database files; lookups take hostile
payload digests and only compare bytes.  :meth:`HashIndex.from_parts`
validates sizes and alignment before trusting cached blobs.
"""

from __future__ import annotations

from mailwarden.engine.signatures.packed import Blob

WILDCARD_SIZE = (1 << 64) - 1
_SIZE_BYTES = 8
_NAME_BYTES = 4
_GOLDEN = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1
#: bitmap bits per distinct entry: about a 3% false-positive rate when full
_BITS_PER_ENTRY = 32
_MIN_BITS_LOG2 = 13


def _bit(size: int, bits_log2: int) -> int:
    return ((size * _GOLDEN) & _MASK64) >> (64 - bits_log2)


class HashIndexBuilder:
    """Accumulates (digest, size, name) entries of one digest length."""

    def __init__(self, digest_len: int) -> None:
        self.digest_len = digest_len
        self._width = digest_len + _SIZE_BYTES + _NAME_BYTES
        self._buf = bytearray()
        self._names = bytearray()
        self._last_name: bytes | None = None
        self._last_off = 0

    def __len__(self) -> int:
        return len(self._buf) // self._width

    def add(self, digest: bytes, size: int | None, name: str) -> None:
        """Add one entry; ``size`` None is a wildcard (any size)."""
        raw = name.encode("utf-8", "surrogateescape")
        if raw != self._last_name:
            # consecutive entries often share a name; others are stored as they come
            self._last_off = len(self._names)
            self._names += raw + b"\x00"
            self._last_name = raw
        sz = WILDCARD_SIZE if size is None else size
        self._buf += (
            digest + sz.to_bytes(_SIZE_BYTES, "big") + self._last_off.to_bytes(_NAME_BYTES, "big")
        )

    def build(self) -> HashIndex:
        width, buf, dlen = self._width, self._buf, self.digest_len
        self._buf = bytearray()
        count = len(buf) // width
        bits_log2 = max(_MIN_BITS_LOG2, (count * _BITS_PER_ENTRY).bit_length())
        shift = 64 - bits_log2
        bitmap = bytearray(1 << (bits_log2 - 3))
        wildcard = False
        buckets: list[bytearray] = [bytearray() for _ in range(256)]
        view = memoryview(buf)
        from_bytes = int.from_bytes
        for i in range(0, len(buf), width):
            record = view[i : i + width]
            buckets[record[0]] += record
            size = from_bytes(record[dlen : dlen + _SIZE_BYTES], "big")
            if size == WILDCARD_SIZE:
                wildcard = True
            else:
                bit = ((size * _GOLDEN) & _MASK64) >> shift
                bitmap[bit >> 3] |= 1 << (bit & 7)
        view.release()
        del view, buf  # the buckets hold every record now
        out = bytearray()
        for bucket in buckets:
            records = [bytes(bucket[j : j + width]) for j in range(0, len(bucket), width)]
            records.sort()
            out += b"".join(records)
            bucket.clear()
            del records
        names, self._names = bytes(self._names), bytearray()
        return HashIndex(dlen, out, bytes(bitmap), wildcard, names)


class HashIndex:
    """Sorted fixed-width hash records; see the module docstring."""

    def __init__(
        self, digest_len: int, records: Blob, bitmap: Blob, wildcard: bool, names: Blob
    ) -> None:
        self.digest_len = digest_len
        self._width = digest_len + _SIZE_BYTES + _NAME_BYTES
        self._records = records
        self._bitmap = bitmap
        self._bits_log2 = (len(memoryview(bitmap)) * 8).bit_length() - 1
        self._names = names
        self.wildcard = wildcard

    def __len__(self) -> int:
        return len(memoryview(self._records)) // self._width

    def wants_size(self, size: int) -> bool:
        """True when some entry may have this size (or any size): worth hashing."""
        if self.wildcard:
            return True
        bit = _bit(size, self._bits_log2)
        return bool(self._bitmap[bit >> 3] & (1 << (bit & 7)))

    def _digest_at(self, i: int) -> bytes:
        start = i * self._width
        return bytes(self._records[start : start + self.digest_len])

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
                return self._name_at(off)
            lo += 1
        return None

    def _name_at(self, off: int) -> str:
        names = self._names
        end = off
        step = 64
        while True:
            chunk = bytes(names[end : end + step])
            nul = chunk.find(b"\x00")
            if nul >= 0:
                end += nul
                break
            if not chunk:
                break  # a damaged cache without the final NUL: the name runs to the end
            end += len(chunk)
            step *= 2
        return bytes(names[off:end]).decode("utf-8", "surrogateescape")

    def to_parts(self) -> tuple[Blob, bytes, Blob]:
        return self._records, bytes((int(self.wildcard),)) + bytes(self._bitmap), self._names

    @classmethod
    def from_parts(cls, digest_len: int, records: Blob, sizes: Blob, names: Blob) -> HashIndex:
        width = digest_len + _SIZE_BYTES + _NAME_BYTES
        sizes = memoryview(sizes)
        bitmap = sizes[1:]
        nbits = len(bitmap)
        if len(memoryview(records)) % width or nbits < 8 or nbits & (nbits - 1):
            raise ValueError("hash index parts are misaligned")
        if bytes(sizes[:1]) not in (b"\x00", b"\x01"):
            raise ValueError("hash index parts are misaligned")
        return cls(digest_len, records, bitmap, bytes(sizes[:1]) == b"\x01", names)
