"""A compact, sorted index of hash signatures (``.hdb .hsb .mdb .msb .fp .sfp``).

Millions of hash signatures must fit in little memory, so an index keeps no
Python object per entry: one ``bytes`` blob of fixed-width records
``digest | size (8 bytes, big-endian; all ones = any size) | name offset (4)``
sorted by digest and searched by bisection, a bitmap over the sizes that
occur (so a payload is hashed only when some signature may have its size;
a false positive costs one needless hash, never a wrong answer), and one
blob of NUL-terminated names.

Building: :class:`HashIndexBuilder` appends records to one ``bytearray`` as
lines are parsed one by one, and takes the plain lines of a whole file as
one array (:meth:`HashIndexBuilder.add_block`, from ``hashlines``);
:meth:`HashIndexBuilder.build` sorts every record with numpy, so no record
becomes a Python object and two million of them sort in about a second.
numpy is imported only to build: a load from the cache never needs it.
:meth:`HashIndex.to_parts` / :meth:`HashIndex.from_parts` move an index in
and out of the cache without re-parsing; a cached index works on
``memoryview`` slices of the mapped cache file, so a lookup touches only the
few pages its bisection visits.

SECURITY: digests and sizes come from database files; lookups take hostile
payload digests and only compare bytes.  :meth:`HashIndex.from_parts`
validates sizes and alignment before trusting cached blobs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mailwarden.engine.signatures.packed import Blob

if TYPE_CHECKING:
    import numpy.typing as npt

    from mailwarden.engine.signatures.hashlines import PlainBlock

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
        self._blocks: list[npt.NDArray[Any]] = []
        self._count = 0
        self._names = bytearray()
        self._last_name: bytes | None = None
        self._last_off = 0

    def __len__(self) -> int:
        return self._count

    def add(self, digest: bytes, size: int | None, name: str) -> None:
        """Add one entry; ``size`` None is a wildcard (any size)."""
        raw = name.encode("utf-8", "surrogateescape")
        if raw != self._last_name:
            # consecutive entries often share a name; others are stored as they come
            self._last_off = self._name_base(len(raw) + 1)
            self._names += raw + b"\x00"
            self._last_name = raw
        sz = WILDCARD_SIZE if size is None else size
        self._buf += (
            digest + sz.to_bytes(_SIZE_BYTES, "big") + self._last_off.to_bytes(_NAME_BYTES, "big")
        )
        self._count += 1

    def add_block(self, block: PlainBlock) -> None:
        """Add every line of a bulk-read block (see ``hashlines``) at once."""
        import numpy as np

        if block.digests.shape[1] != self.digest_len:
            raise ValueError("block digests do not have this index's length")
        n = len(block)
        base = self._name_base(len(block.names))
        records = np.empty((n, self._width), np.uint8)
        records[:, : self.digest_len] = block.digests
        sizes = block.sizes.astype(">u8").view(np.uint8).reshape(n, _SIZE_BYTES)
        records[:, self.digest_len : self.digest_len + _SIZE_BYTES] = sizes
        offsets = (block.name_offsets + base).astype(">u4").view(np.uint8).reshape(n, _NAME_BYTES)
        records[:, self.digest_len + _SIZE_BYTES :] = offsets
        self._blocks.append(records)
        self._names += block.names
        self._last_name = None
        self._count += n

    def _name_base(self, adding: int) -> int:
        """Where the next name goes; the offsets have 32 bits."""
        if len(self._names) + adding > 0xFFFFFFFF:
            raise ValueError("more than 4 GiB of signature names")
        return len(self._names)

    def build(self) -> HashIndex:
        import numpy as np

        width, dlen = self._width, self.digest_len
        parts = [np.frombuffer(bytes(self._buf), np.uint8).reshape(-1, width), *self._blocks]
        self._buf, self._blocks = bytearray(), []
        records = np.concatenate(parts) if len(parts) > 1 else parts[0]
        del parts
        count = len(records)

        # sort whole records as byte strings: seen as big-endian words (widths
        # are multiples of 4) they sort the same way.  Digests are nearly
        # always distinct in their first eight bytes, so one word sorts them,
        # and only a tie (a digest listed twice) needs every word
        def word(at: int) -> npt.NDArray[Any]:
            size = 8 if at + 8 <= width else 4
            return records[:, at : at + size].copy().view(f">u{size}")[:, 0]

        first = word(0)
        order = np.argsort(first, kind="stable")
        ranked = first[order]
        if bool((ranked[1:] == ranked[:-1]).any()):
            order = np.lexsort([word(at) for at in reversed(range(0, width, 8))])
        del first, ranked
        sizes = records[:, dlen : dlen + _SIZE_BYTES].copy().view(">u8")[:, 0].astype(np.uint64)
        records = records[order]
        del order
        bits_log2 = max(_MIN_BITS_LOG2, (count * _BITS_PER_ENTRY).bit_length())
        any_size = sizes == WILDCARD_SIZE
        wildcard = bool(any_size.any())
        bits = (sizes[~any_size] * np.uint64(_GOLDEN)) >> np.uint64(64 - bits_log2)
        del sizes, any_size
        bitmap_bytes = np.zeros(1 << (bits_log2 - 3), np.uint8)
        np.bitwise_or.at(
            bitmap_bytes,
            bits >> np.uint64(3),
            np.left_shift(1, bits & np.uint64(7)).astype(np.uint8),
        )
        bitmap = bitmap_bytes.tobytes()
        names, self._names = bytes(self._names), bytearray()
        self._count = 0
        return HashIndex(dlen, records.tobytes(), bitmap, wildcard, names)


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
