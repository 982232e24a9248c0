"""Read the plain lines of a hash database (``Digest:Size:Name``) in bulk, with numpy.

The hash databases are the millions of a signature set (ClamAV's ``main``
and ``daily`` carry several million MD5 and SHA lines), so reading them a
line at a time in Python is what a cold load of a big set spends most of
its time on.  :func:`plain_lines` reads the bytes of many lines of an
``.hdb``/``.hsb`` file as arrays instead (the parser hands it pieces of a
file of about 8 MiB cut at line ends, so memory stays a few times that,
whatever the file's size): it
finds each line's two colons, checks the digest (32, 40 or 64 hex digits),
the size (1 to 19 decimal digits) and the name (at least one byte, no colon,
no space or control byte at either end), and returns, per digest length,
the digests, sizes and a block of NUL-terminated names.  Every line that is
not in exactly that form (comments, blank lines, ``*`` sizes,
functionality-level fields, anything malformed) is returned by number and
text for the database parser's general path, so what is loaded, skipped or
rejected, and the line number an error names, are the same as when every
line goes through the general path.

SECURITY: the input is database text, trusted as the administrator's choice
but read defensively: every index is bounded by the data, no value is used
before it is checked, and memory is a fixed multiple of the chunk's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: Hex digits of a digest -> its length in bytes (MD5, SHA1, SHA256).
_HEX_DIGITS = {32: 16, 40: 20, 64: 32}
#: A size of more digits than this may not fit 64 bits: the general path decides.
_MAX_SIZE_DIGITS = 19

_NIBBLE = np.full(256, 0xFF, np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _NIBBLE[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _NIBBLE[_c] = 10 + _i
#: bytes a name may start and end with in the bulk form: printable ASCII but
#: space and colon (the general path strips, or rejects, anything else)
_NAME_EDGE = np.zeros(256, np.bool_)
_NAME_EDGE[0x21:0x7F] = True
_NAME_EDGE[ord(":")] = False

Bytes = npt.NDArray[np.uint8]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class PlainBlock:
    """The plain lines of one digest length, in file order."""

    #: one row of ``digest_len`` bytes per line
    digests: Bytes
    sizes: npt.NDArray[np.uint64]
    #: the names, each followed by a NUL
    names: bytes
    #: where each line's name starts in ``names``
    name_offsets: Ints

    def __len__(self) -> int:
        return len(self.sizes)


@dataclass(frozen=True, slots=True)
class PlainLines:
    #: digest length in bytes -> the plain lines with digests of that length
    blocks: dict[int, PlainBlock]
    #: (line number from 1, text) of every other line, in file order
    others: list[tuple[int, str]]


def plain_lines(data: bytes, first_line: int = 1) -> PlainLines:
    """Split ``data`` (whole lines of a hash database) into plain blocks and other lines.

    ``first_line`` is the number of the first line of ``data`` in its file.
    """
    if not data:
        return PlainLines({}, [])
    if not data.endswith(b"\n"):
        data += b"\n"
    arr = np.frombuffer(data, np.uint8)
    last = len(data) - 1
    ends = np.flatnonzero(arr == 0x0A)  # each line's LF
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    # the text of a line stops before its LF, or before a CR ending it
    stop = ends.copy()
    has_cr = (ends > starts) & (arr[np.maximum(ends - 1, 0)] == 0x0D)
    stop[has_cr] -= 1
    colons = np.flatnonzero(arr == ord(":"))
    # positions past the data stand in for colons a line does not have
    padded = np.concatenate([colons, np.full(3, len(arr) + 1, colons.dtype)])
    first = np.searchsorted(colons, starts)
    c1, c2, c3 = padded[first], padded[first + 1], padded[first + 2]
    ok = (c2 < stop) & (c3 > stop)
    hex_digits = c1 - starts
    size_digits = c2 - c1 - 1
    name_len = stop - c2 - 1
    ok &= np.isin(hex_digits, list(_HEX_DIGITS))
    ok &= (size_digits >= 1) & (size_digits <= _MAX_SIZE_DIGITS) & (name_len >= 1)
    ok &= _NAME_EDGE[arr[np.minimum(c2 + 1, last)]] & _NAME_EDGE[arr[np.maximum(stop - 1, 0)]]
    blocks: dict[int, PlainBlock] = {}
    for digits, dlen in _HEX_DIGITS.items():
        rows = np.flatnonzero(ok & (hex_digits == digits))
        if not len(rows):
            continue
        digests, good = _digests(arr, starts[rows], dlen)
        sizes, good_size = _sizes(arr, c1[rows] + 1, size_digits[rows])
        good &= good_size
        ok[rows[~good]] = False
        rows, digests, sizes = rows[good], digests[good], sizes[good]
        if len(rows):
            names, offsets = _names(arr, c2[rows] + 1, name_len[rows])
            blocks[dlen] = PlainBlock(digests, sizes, names, offsets)
    others = [
        (int(i) + first_line, data[starts[i] : ends[i]].decode("utf-8", "surrogateescape"))
        for i in np.flatnonzero(~ok)
    ]
    return PlainLines(blocks, others)


def _digests(arr: Bytes, at: Ints, dlen: int) -> tuple[Bytes, npt.NDArray[np.bool_]]:
    """The digest bytes of the lines starting at ``at``, and which are all hex."""
    # every line's hex digits side by side, gathered in one step
    nibbles = _NIBBLE[np.lib.stride_tricks.sliding_window_view(arr, 2 * dlen)[at]]
    good = np.asarray((nibbles <= 0x0F).all(axis=1), np.bool_)
    digests = (nibbles[:, 0::2] << 4) | (nibbles[:, 1::2] & 0x0F)
    return digests.astype(np.uint8), good


def _sizes(
    arr: Bytes, at: Ints, digits: Ints
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_]]:
    """The decimal numbers of ``digits`` digits at ``at``, and which are all digits."""
    value = np.zeros(len(at), np.uint64)
    good = np.ones(len(at), np.bool_)
    ten = np.uint64(10)
    for j in range(int(digits.max())):
        active = digits > j
        digit = arr[np.minimum(at + j, len(arr) - 1)].astype(np.int64) - ord("0")
        good &= ~active | ((digit >= 0) & (digit <= 9))
        step = value * ten + np.clip(digit, 0, 9).astype(np.uint64)
        value = np.where(active, step, value)
    return value, good


def _names(arr: Bytes, at: Ints, length: Ints) -> tuple[bytes, Ints]:
    """The names (each with a NUL after it) as one block, and each one's offset."""
    # keep each name with the byte after it (a CR or LF, replaced by the NUL):
    # runs of bytes to drop and to keep, alternately, from the start
    width = length + 1
    runs = np.empty(2 * len(at), np.int64)
    runs[0] = at[0]
    runs[2::2] = at[1:] - (at[:-1] + width[:-1])
    runs[1::2] = width
    keep = np.zeros(2 * len(at), np.bool_)
    keep[1::2] = True
    mask = np.repeat(keep, runs)
    block = arr[: len(mask)][mask]
    offsets = np.cumsum(width) - width
    block[offsets + length] = 0
    return block.tobytes(), offsets
