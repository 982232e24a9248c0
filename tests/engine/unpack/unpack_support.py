"""Helpers for the archive extractor tests: contexts, a tiny recursive driver, archive builders.

The driver mirrors what the engine's walker does with extractors (sniff, look
up the extractor, charge a file and a level per child, stop a subtree on a
non-fatal limit, stop everything on a fatal one) so recursion and bombs can be
tested without the walker itself.
"""

from __future__ import annotations

import functools
import io
import lzma
import mmap
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import py7zr

from mailwarden.engine.filetype import sniff
from mailwarden.engine.limits import LimitExceeded, Limits
from mailwarden.engine.objects import BufferReader, Child, ScanObject, WalkContext
from mailwarden.engine.unpack import Extractor, extractor_for

MiB = 1024 * 1024


def make_ctx(**limits: object) -> WalkContext:
    return WalkContext(Limits(**limits))  # type: ignore[arg-type]


def run(
    extract: Extractor, data: bytes, *, name: str | None = None, ctx: WalkContext | None = None
) -> tuple[list[Child], WalkContext]:
    """Run one extractor on ``data`` at path ("outer",)."""
    ctx = ctx or make_ctx()
    obj = ScanObject(data, path=(name or "outer",), name=name)
    return list(extract(obj, ctx)), ctx


@dataclass
class Leaf:
    part: str
    size: int
    #: the first bytes only, so that collecting leaves costs no memory
    data: bytes


def walk(data: bytes, ctx: WalkContext, *, name: str = "message") -> list[Leaf]:
    """Recursively extract ``data``; returns the objects no extractor opened."""
    leaves: list[Leaf] = []
    _walk(ScanObject(data, path=(name,), name=name), ctx, leaves)
    return leaves


def _walk(obj: ScanObject, ctx: WalkContext, leaves: list[Leaf]) -> None:
    ctx.budget.check_time()
    extract = extractor_for(sniff(obj.data))
    if extract is None:
        leaves.append(Leaf(obj.part, obj.size, bytes(obj.data[:4096])))
        return
    try:
        for kid in extract(obj, ctx):
            ctx.budget.add_file()
            ctx.budget.check_depth(obj.depth + 1)
            sub = ScanObject(
                kid.data, path=(*obj.path, kid.label), name=kid.name, depth=obj.depth + 1
            )
            _walk(sub, ctx, leaves)
    except LimitExceeded as exc:
        if exc.fatal:
            raise
        ctx.unscanned(obj.part, exc.reason)


def zip_bytes(
    members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED, **kw: object
) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method, **kw) as zf:  # type: ignore[arg-type]
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def deflated_zeros(total: int, segment: int = MiB) -> bytes:
    """A raw deflate stream of ``total`` zero bytes, built without making them.

    A full flush resets the compressor, so every segment compresses to the same
    bytes: compress one and repeat it.
    """
    assert total % segment == 0
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = comp.compress(bytes(segment)) + comp.flush(zlib.Z_FULL_FLUSH)
    again = comp.compress(bytes(segment)) + comp.flush(zlib.Z_FULL_FLUSH)
    assert first == again
    return first * (total // segment) + comp.flush()


def zip64_single(name: str, deflated: bytes, size: int, crc: int = 0) -> bytes:
    """A one-member zip64 archive around ready-made deflate data of ``size`` bytes."""
    raw_name = name.encode()
    local_extra = struct.pack("<HHQQ", 1, 16, size, len(deflated))
    local = struct.pack(
        "<4s5H3L2H",
        b"PK\x03\x04",
        45,
        0,
        8,
        0,
        0,
        crc,
        0xFFFFFFFF,
        0xFFFFFFFF,
        len(raw_name),
        len(local_extra),
    )
    central_extra = struct.pack("<HHQQQ", 1, 24, size, len(deflated), 0)
    central = struct.pack(
        "<4s6H3L5H2L",
        b"PK\x01\x02",
        45,
        45,
        0,
        8,
        0,
        0,
        crc,
        0xFFFFFFFF,
        0xFFFFFFFF,
        len(raw_name),
        len(central_extra),
        0,
        0,
        0,
        0,
        0xFFFFFFFF,
    )
    body = local + raw_name + local_extra + deflated
    cd = central + raw_name + central_extra
    cd_offset = len(body)
    eocd64_offset = cd_offset + len(cd)
    eocd64 = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, 1, 1, len(cd), cd_offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, eocd64_offset, 1)
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return body + cd + eocd64 + locator + eocd


def set_zip_encrypted(data: bytes) -> bytes:
    """Mark every member encrypted (general purpose flag bit 0) in both headers."""
    out = bytearray(data)
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = out.find(sig)
        while pos >= 0:
            out[pos + flag_at] |= 0x01
            pos = out.find(sig, pos + 4)
    return bytes(out)


def _rar_block(kind: int, flags: int, body: bytes, data: bytes = b"") -> bytes:
    size = 7 + len(body)
    head = struct.pack("<BHH", kind, flags, size) + body
    return struct.pack("<H", zlib.crc32(head) & 0xFFFF) + head + data


def rar4_stored(members: list[tuple[str, bytes]], *, encrypted: bool = False) -> bytes:
    """A RAR 4 archive holding ``members`` uncompressed (method 0x30, "store")."""
    out = b"Rar!\x1a\x07\x00" + _rar_block(0x73, 0, b"\x00" * 6)
    for name, data in members:
        raw_name = name.encode()
        flags = 0x8000 | (0x04 if encrypted else 0)
        body = struct.pack(
            "<LLBLLBBHL",
            len(data),
            len(data),
            3,  # host OS: Unix
            zlib.crc32(data),
            0,
            29,
            0x30,
            len(raw_name),
            0o100644,
        )
        out += _rar_block(0x74, flags, body + raw_name, data)
    return out + _rar_block(0x7B, 0x4000, b"")


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for pos in range(0, len(data), size):
        yield data[pos : pos + size]


def xz_zeros(size: int) -> bytes:
    """An xz stream of ``size`` zero bytes (a multiple of 1 MiB)."""
    comp = lzma.LZMACompressor(lzma.FORMAT_XZ, preset=1)
    chunk = bytes(MiB)
    return b"".join(comp.compress(chunk) for _ in range(size // MiB)) + comp.flush()


@functools.cache
def sevenzip_zeros(size: int) -> bytes:
    """A 7z archive of one member of ``size`` zero bytes."""
    buf = io.BytesIO()
    # an anonymous map reads as zeros without the zeros ever being allocated
    with (
        mmap.mmap(-1, size) as zeros,
        io.BufferedReader(BufferReader(zeros)) as src,
        py7zr.SevenZipFile(buf, "w") as arc,
    ):
        arc.writef(src, "zeros.bin")
    return buf.getvalue()
