"""Single-stream decompressors: gzip, bzip2 and xz, each yielding one child.

The walker calls :func:`extract_gzip`, :func:`extract_bzip2` or
:func:`extract_xz` for objects sniffed as that kind; each yields the
decompressed payload as one :class:`Child`, which the walker sniffs again (so a
``.tar.gz`` is gzip, then tar).  Concatenated streams (``cat a.gz b.gz``,
pbzip2 output, multi-stream xz) decode to one payload, as the command-line
tools do; trailing junk after the last stream is ignored with a warning, and a
truncated or corrupt stream yields what decoded cleanly before the damage.

The child's label is the original name from the gzip header when there is one,
else the outer name without its suffix (``a.tgz`` gives ``a.tar``), else the
tool's name (``gunzip``).

SECURITY: hostile input.  Decoding goes through the bounded ``pump`` (at most
1 MiB out per step, budget and ratio checked per step); header names are labels
only.  No privileges, no files.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable, Iterator

from mailwarden.engine.objects import Buffer, Child, ScanObject, WalkContext
from mailwarden.engine.unpack._stream import Decoder, child, lenient, pump

#: decoder errors that mean "damaged from here on", not "bug"
DECODE_ERRORS: tuple[type[Exception], ...] = (
    zlib.error,
    lzma.LZMAError,
    OSError,
    EOFError,
    ValueError,
)

_GZIP_MAGIC = b"\x1f\x8b"
_BZIP2_MAGIC = b"BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"

#: outer suffix -> suffix of the payload's name
_SUFFIXES: dict[str, dict[str, str]] = {
    "gzip": {".tgz": ".tar", ".taz": ".tar", ".gz": "", ".gzip": "", ".z": ""},
    "bzip2": {".tbz2": ".tar", ".tbz": ".tar", ".bz2": "", ".bz": ""},
    "xz": {".txz": ".tar", ".xz": ""},
}
_FALLBACK = {"gzip": "gunzip", "bzip2": "bunzip2", "xz": "unxz"}

# gzip header flag bits (RFC 1952)
_FEXTRA = 0x04
_FNAME = 0x08
_MAX_NAME = 1024


@lenient("gzip")
def extract_gzip(obj: ScanObject, ctx: WalkContext) -> Iterator[Child]:
    """Decompress a gzip payload (one or more members) into one child."""
    label = _gzip_name(obj.data) or _outer_label(obj, "gzip")
    # wbits 31: zlib parses the gzip header and checks the CRC and length itself
    yield from _streams(
        obj, ctx, kind="gzip", magic=_GZIP_MAGIC, new=lambda: zlib.decompressobj(31), label=label
    )


@lenient("bzip2")
def extract_bzip2(obj: ScanObject, ctx: WalkContext) -> Iterator[Child]:
    """Decompress a bzip2 payload (one or more streams) into one child."""
    label = _outer_label(obj, "bzip2")
    yield from _streams(
        obj, ctx, kind="bzip2", magic=_BZIP2_MAGIC, new=bz2.BZ2Decompressor, label=label
    )


@lenient("xz")
def extract_xz(obj: ScanObject, ctx: WalkContext) -> Iterator[Child]:
    """Decompress an xz payload (one or more streams) into one child."""
    label = _outer_label(obj, "xz")
    yield from _streams(
        obj,
        ctx,
        kind="xz",
        magic=_XZ_MAGIC,
        new=lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ),
        label=label,
    )


def _streams(
    obj: ScanObject,
    ctx: WalkContext,
    *,
    kind: str,
    magic: bytes,
    new: Callable[[], Decoder],
    label: str,
) -> Iterator[Child]:
    view = memoryview(obj.data)
    sink = ctx.spool()
    pos = 0
    try:
        while pos < len(view):
            consumed, finished = pump(new(), view[pos:], sink, ctx)
            pos += consumed
            if not finished:
                ctx.warn(obj.part, f"{kind}: truncated stream")
                break
            rest = view[pos:]
            # xz pads streams with zero bytes; gzip writers sometimes do too
            skipped = len(rest) - len(bytes(rest[: 64 * 1024]).lstrip(b"\x00"))
            if skipped == len(rest):
                break
            pos += skipped
            if bytes(view[pos : pos + len(magic)]) != magic:
                ctx.warn(obj.part, f"{kind}: {len(view) - pos} bytes of trailing data ignored")
                break
    except DECODE_ERRORS as exc:
        ctx.warn(obj.part, f"{kind}: corrupt stream ({exc}); scanning what decoded")
    if sink.size == 0 and pos == 0:
        return
    yield child(label, sink.getvalue(), kind, len(view))


def _outer_label(obj: ScanObject, kind: str) -> str:
    name = obj.name or ""
    lower = name.lower()
    for suffix, replacement in _SUFFIXES[kind].items():
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)] + replacement
    return _FALLBACK[kind]


def _gzip_name(data: Buffer) -> str | None:
    """The FNAME field of the first gzip header, if present and sane."""
    head = bytes(data[: 10 + 2 + 65535 + _MAX_NAME])
    if len(head) < 10 or not head.startswith(_GZIP_MAGIC) or not head[3] & _FNAME:
        return None
    pos = 10
    if head[3] & _FEXTRA:
        if len(head) < pos + 2:
            return None
        pos += 2 + int.from_bytes(head[pos : pos + 2], "little")
    end = head.find(b"\x00", pos, pos + _MAX_NAME)
    if end <= pos:
        return None
    # RFC 1952 says ISO 8859-1; the name is a display label, nothing more
    return head[pos:end].decode("latin-1")
