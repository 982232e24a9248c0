"""ZIP extractor: yields every member of a zip archive as a child.

The walker calls :func:`extract_zip` for objects sniffed as ZIP (including
DOCX/XLSX/JAR, which are zips).  The central directory is read with
:mod:`zipfile` (zip64 and prepended data, as in self-extractors, included); when
it is missing or broken, members are found by scanning for local file headers
instead.  Member data is decoded here, not by :mod:`zipfile`: stored, deflate,
deflate64 (when the ``inflate64`` module is importable), bzip2, lzma and xz.
Encrypted members and other methods are reported as unscanned.

Each child has the member name as label, its basename as name, and meta
``{"compressed_size": n, "container": "zip"}``.  Directory entries without data
are skipped.

SECURITY: hostile input.  Declared uncompressed sizes are ignored; output is
decoded in bounded steps into a spool that charges the budget per chunk, with
the expansion ratio checked per step.  Member names are labels: nothing is
written to the file system.  No privileges needed.
"""

from __future__ import annotations

import bz2
import lzma
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mailwarden.engine.limits import LimitExceeded
from mailwarden.engine.objects import Buffer, BufferReader, Child, ScanObject, WalkContext
from mailwarden.engine.unpack._stream import (
    Decoder,
    child,
    copy,
    lenient,
    member_part,
    pump,
)
from mailwarden.engine.unpack.compress import DECODE_ERRORS

_LOCAL = b"PK\x03\x04"
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_STORED, _DEFLATED, _DEFLATE64, _BZIP2, _LZMA, _XZ = 0, 8, 9, 12, 14, 95
_FLAG_ENCRYPTED = 0x01
_FLAG_DESCRIPTOR = 0x08
_FLAG_UTF8 = 0x800
_ZIP64_EXTRA = 0x0001
#: deflate64 matches reach 64 KiB, so feed it little input per step
_DEFLATE64_IN_STEP = 256


@dataclass(slots=True)
class _Entry:
    name: str
    flags: int
    method: int
    #: offset of the local header, or of the data when ``header_read``
    offset: int
    #: None when only the data itself can tell where it ends
    compressed_size: int | None
    header_read: bool = False


@lenient("zip")
def extract_zip(obj: ScanObject, ctx: WalkContext) -> Iterator[Child]:
    """Yield each member of a zip archive; see the module docstring."""
    data = obj.data
    _check_entry_count(data, ctx)
    try:
        entries = _central_entries(data)
    except Exception as exc:  # zipfile fails in many ways on hostile input
        ctx.warn(obj.part, f"zip: central directory unreadable ({exc}); reading local headers")
        entries = list(_local_entries(data))
    for entry in entries:
        ctx.budget.check_time()
        yield from _member(obj, ctx, entry)


def _member(obj: ScanObject, ctx: WalkContext, entry: _Entry) -> Iterator[Child]:
    part = member_part(obj, entry.name)
    if entry.name.endswith("/") and not entry.compressed_size:
        return
    if entry.flags & _FLAG_ENCRYPTED:
        ctx.unscanned(part, "encrypted archive")
        return
    view = memoryview(obj.data)
    start = entry.offset if entry.header_read else _data_offset(view, entry.offset)
    if start is None:
        ctx.warn(part, "zip: member has no local header where the directory says")
        return
    end = len(view) if entry.compressed_size is None else start + entry.compressed_size
    if end > len(view):
        ctx.warn(part, "zip: member data runs past the end of the archive")
    src = view[start:end]
    sink = ctx.spool()
    consumed = len(src)
    try:
        if entry.method == _STORED:
            if entry.compressed_size is None:
                src = src[: _stored_end(src)]
                consumed = len(src)
            copy(src, sink, ctx)
        else:
            made = _decoder(entry.method, src, ctx)
            if made is None:
                ctx.unscanned(part, f"unsupported compression (zip method {entry.method})")
                return
            dec, skip, in_step = made
            consumed, finished = pump(dec, src[skip:], sink, ctx, in_step=in_step)
            consumed += skip
            # raw LZMA may legitimately end with the data instead of an end marker
            if not finished and entry.method != _LZMA:
                ctx.warn(part, "zip: member data truncated")
    except DECODE_ERRORS as exc:
        ctx.warn(part, f"zip: corrupt member data ({exc}); scanning what decoded")
    yield child(entry.name, sink.getvalue(), "zip", consumed)


def _central_entries(data: Buffer) -> list[_Entry]:
    with zipfile.ZipFile(BufferReader(data)) as zf:
        return [
            _Entry(i.filename, i.flag_bits, i.compress_type, i.header_offset, i.compress_size)
            for i in zf.infolist()
        ]


def _check_entry_count(data: Buffer, ctx: WalkContext) -> None:
    """Refuse a directory that lists more members than may still be scanned.

    zipfile builds an object per listed member before we see any, so the count
    is read from the end record first.
    """
    tail_start = max(0, len(data) - 65557)
    at = bytes(data[tail_start:]).rfind(_EOCD)
    if at < 0:
        return
    eocd = tail_start + at
    count = int.from_bytes(data[eocd + 10 : eocd + 12], "little")
    locator = eocd - 20
    if count == 0xFFFF and locator >= 0 and data[locator : locator + 4] == _EOCD64_LOCATOR:
        rec = int.from_bytes(data[locator + 8 : locator + 16], "little")
        if 0 <= rec <= len(data) - 56:
            count = int.from_bytes(data[rec + 32 : rec + 40], "little")
    allowed = ctx.limits.max_files - ctx.budget.files
    if count > allowed:
        raise LimitExceeded(f"limit: more than {ctx.limits.max_files} files", fatal=True)


def _data_offset(view: memoryview, header: int) -> int | None:
    fields = _local_header(view, header)
    if fields is None:
        return None
    return header + _LOCAL_HEADER.size + int(fields[9]) + int(fields[10])


def _local_header(view: memoryview, at: int) -> tuple[Any, ...] | None:
    if at < 0 or at + _LOCAL_HEADER.size > len(view):
        return None
    fields = _LOCAL_HEADER.unpack_from(view, at)
    if fields[0] != _LOCAL:
        return None
    return fields


def _local_entries(data: Buffer) -> Iterator[_Entry]:
    """Members found by their local headers, for archives without a usable directory."""
    view = memoryview(data)
    pos = data.find(_LOCAL)
    while pos >= 0:
        fields = _local_header(view, pos)
        if fields is None:
            break
        _sig, _ver, flags, method, _time, _date, _crc, csize, _usize, nlen, xlen = fields
        name_at = pos + _LOCAL_HEADER.size
        raw_name = bytes(view[name_at : name_at + nlen])
        extra = bytes(view[name_at + nlen : name_at + nlen + xlen])
        start = name_at + nlen + xlen
        if csize == 0xFFFFFFFF:
            csize = _zip64_compressed(extra)
        size: int | None = csize
        if flags & _FLAG_DESCRIPTOR or (csize in (0, None) and method != _STORED):
            size = None
        name = raw_name.decode("utf-8" if flags & _FLAG_UTF8 else "cp437", "replace")
        yield _Entry(name, flags, method, start, size, header_read=True)
        # skip a member's data only when its size is known; else look just past the header
        nxt = start + size if size is not None and start + size <= len(view) else pos + 4
        pos = data.find(_LOCAL, nxt)


def _zip64_compressed(extra: bytes) -> int | None:
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<2H", extra, pos)
        if tag == _ZIP64_EXTRA and length >= 16:
            return int.from_bytes(extra[pos + 12 : pos + 20], "little")
        pos += 4 + length
    return None


def _stored_end(src: memoryview) -> int:
    """Where stored data of unknown size ends: at the next zip record, if any."""
    raw = bytes(src)
    ends = [raw.find(sig) for sig in (b"PK\x07\x08", _LOCAL, b"PK\x01\x02")]
    found = [e for e in ends if e >= 0]
    return min(found) if found else len(raw)


class _Deflate64:
    """Adapts ``inflate64.Inflater`` to the decoder interface ``pump`` expects."""

    def __init__(self) -> None:
        import inflate64  # type: ignore[import-not-found,unused-ignore]

        self._inflater = inflate64.Inflater()

    def decompress(self, data: bytes, max_length: int, /) -> bytes:
        # no output cap here: ``pump`` bounds output by feeding tiny input steps
        out: bytes = self._inflater.inflate(data)
        return out

    @property
    def eof(self) -> bool:
        return bool(self._inflater.eof)

    @property
    def unused_data(self) -> bytes:
        return b""


def _decoder(method: int, src: memoryview, ctx: WalkContext) -> tuple[Decoder, int, int] | None:
    """(decoder, bytes of method header to skip, input step) for a zip method."""
    if method == _DEFLATED:
        return zlib.decompressobj(-15), 0, 64 * 1024
    if method == _BZIP2:
        return bz2.BZ2Decompressor(), 0, 64 * 1024
    if method == _XZ:
        return lzma.LZMADecompressor(lzma.FORMAT_XZ), 0, 64 * 1024
    if method == _LZMA:
        return _lzma_decoder(src, ctx)
    if method == _DEFLATE64:
        try:
            return _Deflate64(), 0, _DEFLATE64_IN_STEP
        except ImportError:
            return None
    return None


def _lzma_decoder(src: memoryview, ctx: WalkContext) -> tuple[Decoder, int, int]:
    """Zip's LZMA: a 4-byte version/size header, 5 bytes of properties, raw LZMA1.

    The dictionary is clamped to what the budget still allows out: a match can
    never reach further back than the output made so far, so a smaller window
    decodes the same bytes, and a header claiming 4 GiB buys no memory.
    """
    if len(src) < 9:
        raise ValueError("lzma member header truncated")
    props_len = int.from_bytes(src[2:4], "little")
    props = bytes(src[4 : 4 + props_len])
    if props_len != 5 or len(props) != 5:
        raise ValueError("lzma member properties malformed")
    lc_lp_pb = props[0]
    if lc_lp_pb >= 9 * 5 * 5:
        raise ValueError("lzma member properties malformed")
    lc, rest = lc_lp_pb % 9, lc_lp_pb // 9
    lp, pb = rest % 5, rest // 5
    remaining = ctx.limits.max_total_bytes - ctx.budget.total_bytes
    dict_size = max(4096, min(int.from_bytes(props[1:5], "little"), remaining))
    filt = {"id": lzma.FILTER_LZMA1, "lc": lc, "lp": lp, "pb": pb, "dict_size": dict_size}
    return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt]), 4 + props_len, 64 * 1024
