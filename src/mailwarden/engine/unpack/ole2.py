"""The OLE2 extractor: streams of a compound file, embedded packages, VBA source.

The walker calls :func:`extract_ole2` for FileKind.OLE2 (legacy .doc, .xls,
.ppt, .msg, and OLE objects found elsewhere)::

    for child in extract_ole2(obj, ctx):
        # "WordDocument", "Macros/VBA/ThisDocument", "_Ole10Native/payload.exe",
        # "vba/ThisDocument"
        ...

Every stream is yielded under its storage path joined with "/" (control
characters in names, as in "\\x05SummaryInformation", become "_").  An
``\\x01Ole10Native`` stream (an embedded "Package" object) also yields the file
it wraps, under its own name.  When the file holds a VBA project, the macro
source decompressed by oletools' ``olevba`` is yielded as ``vba/<module>``, so
signatures and heuristics see the code rather than its compressed form.

Encrypted documents (an ``EncryptedPackage`` stream, a Word FIB with
fEncrypted, an Excel FILEPASS record, PowerPoint's ``EncryptedSummary``) are
reported with ``ctx.unscanned(part, "encrypted document")``; their streams are
still yielded.  OOXML files are zips and belong to the zip extractor.

SECURITY: input is hostile; no privileges.  olefile and olevba parse in
memory from the buffer; a stream whose directory entry claims more bytes than
the file holds is skipped (a looping sector chain cannot inflate it), every
stream is charged to the budget, and any parser exception is contained here
as a warning.
"""

from __future__ import annotations

import logging
import struct
import warnings
from collections.abc import Iterator

import olefile

from mailwarden.engine.limits import LimitExceeded
from mailwarden.engine.mime import safe_label
from mailwarden.engine.objects import BufferReader, Child, ScanObject, WalkContext

_NATIVE = "\x01Ole10Native"
_VBA_MARKERS = ("vba", "_vba_project_cur", "macros")
_WORD_FLAGS = struct.Struct("<H")
_FILEPASS = 0x002F
#: Excel puts FILEPASS right after BOF; a few records are enough to find it
_BIFF_RECORDS_CHECKED = 16
_ZSTR_MAX = 1024


def extract_ole2(obj: ScanObject, ctx: WalkContext) -> Iterator[Child]:
    """Yield the streams, embedded packages and VBA source of the compound file ``obj``."""
    try:
        ole = olefile.OleFileIO(BufferReader(obj.data))
    except Exception as exc:
        ctx.warn(obj.part, f"malformed OLE2: {type(exc).__name__}: {exc}")
        return
    try:
        yield from _streams(ole, obj, ctx)
    finally:
        ole.close()
    if _has_vba(ole.listdir(streams=False, storages=True)):
        yield from _vba(obj, ctx)


def _streams(ole: olefile.OleFileIO, obj: ScanObject, ctx: WalkContext) -> Iterator[Child]:
    paths: list[list[str]] = ole.listdir(streams=True, storages=False)
    encrypted = False
    for path in paths:
        ctx.budget.check_time()
        label = "/".join(safe_label(p) for p in path)
        try:
            if ole.get_size(path) > len(obj.data):
                ctx.warn(f"{obj.part}/{label}", "stream larger than the file: skipped")
                continue
            data: bytes = ole.openstream(path).read()
        except LimitExceeded:
            raise
        except Exception as exc:
            ctx.warn(f"{obj.part}/{label}", f"unreadable stream: {type(exc).__name__}: {exc}")
            continue
        ctx.budget.add_bytes(len(data))
        encrypted = encrypted or _is_encrypted(path[-1], data)
        if not data:
            continue
        yield Child(label=label, data=data, name=path[-1], meta={"ole_stream": True})
        if path[-1] == _NATIVE:
            native = _native_package(data)
            if native is not None:
                name, payload = native
                yield Child(
                    label=f"{label}/{safe_label(name) or 'package'}", data=payload, name=name
                )
    if encrypted:
        ctx.unscanned(obj.part, "encrypted document")


def _is_encrypted(name: str, data: bytes) -> bool:
    if name in ("EncryptedPackage", "EncryptedSummary"):
        return True
    if name == "WordDocument" and len(data) >= 0x0C:
        return bool(_WORD_FLAGS.unpack_from(data, 0x0A)[0] & 0x0100)
    if name in ("Workbook", "Book"):
        pos = 0
        for _ in range(_BIFF_RECORDS_CHECKED):
            if pos + 4 > len(data):
                break
            kind, size = struct.unpack_from("<HH", data, pos)
            if kind == _FILEPASS:
                return True
            pos += 4 + size
    return False


def _zstr(data: bytes, pos: int) -> tuple[str, int]:
    end = data.find(b"\x00", pos, pos + _ZSTR_MAX)
    if end < 0:
        raise ValueError("unterminated string")
    return data[pos:end].decode("latin-1"), end + 1


def _native_package(data: bytes) -> tuple[str, bytes] | None:
    """Unwrap an OLENativeStream: (file name, file bytes), or None when malformed.

    Layout: u32 size, u16 kind, label\\0, source path\\0, two u32, temp path\\0,
    u32 data size, data.
    """
    try:
        label, pos = _zstr(data, 6)
        source, pos = _zstr(data, pos)
        temp, pos = _zstr(data, pos + 8)
        (size,) = struct.unpack_from("<I", data, pos)
    except (ValueError, struct.error):
        return None
    payload = data[pos + 4 : pos + 4 + size]
    if not payload:
        return None
    # the label is the short display name; a path's last element is the real one
    best = label or source.replace("\\", "/").rsplit("/", 1)[-1] or temp
    return best, payload


def _has_vba(storages: list[list[str]]) -> bool:
    return any(part.lower() in _VBA_MARKERS for path in storages for part in path)


def _vba(obj: ScanObject, ctx: WalkContext) -> Iterator[Child]:
    # olevba logs every oddity of hostile input at warning level; its findings
    # reach us as return values, so its log is noise here
    logging.getLogger("olevba").setLevel(logging.CRITICAL)
    with warnings.catch_warnings():
        # olevba's grammar uses deprecated pyparsing names; not ours to fix
        warnings.simplefilter("ignore", DeprecationWarning)
        from oletools import olevba

    try:
        parser = olevba.VBA_Parser(filename=obj.name or "document", data=bytes(obj.data))
        modules = list(parser.extract_macros())
    except Exception as exc:
        ctx.warn(obj.part, f"VBA not extracted: {type(exc).__name__}: {exc}")
        return
    for _sub, _stream, module, code in modules:
        ctx.budget.check_time()
        source = code.encode("utf-8", "replace") if isinstance(code, str) else bytes(code)
        ctx.budget.add_bytes(len(source))
        if source:
            yield Child(
                label=f"vba/{safe_label(str(module))}",
                data=source,
                name=str(module),
                content_type="text/x-vba",
                meta={"vba": True},
            )
