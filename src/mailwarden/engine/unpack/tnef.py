"""The TNEF extractor: attachments and bodies of Outlook's winmail.dat.

The walker calls :func:`extract_tnef` for FileKind.TNEF::

    for child in extract_tnef(obj, ctx):   # "report.doc", "body.rtf", "attachment-2"
        ...

A TNEF stream is a signature, a key, then attributes (level, id, length,
data, checksum).  Each attachment starts with attAttachRenddata; its bytes are
attAttachData (or the PR_ATTACH_DATA_OBJ/BIN property), its name the
PR_ATTACH_LONG_FILENAME property of attAttachment, else attAttachTitle.  An
attached Outlook message is itself TNEF (or an OLE2 storage) and is yielded
for the walker to open.  The message's own bodies are yielded too:
attBody as ``body.txt``, PR_BODY_HTML as ``body.html`` and PR_RTF_COMPRESSED,
decompressed (MS-OXRTFCP), as ``body.rtf``.

Checksums are not verified (a wrong one changes nothing we scan); a truncated
attribute yields the bytes that are there.

SECURITY: input is hostile; no privileges.  Lengths are checked against the
buffer before use and never allocate by themselves; property counts are
bounded by the bytes present; every child is charged to the budget and the
RTF decompressor (at most ~8x expansion by construction) checks time.
Names are labels only.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from mailwarden.engine.mime import safe_label
from mailwarden.engine.objects import Buffer, Child, ScanObject, WalkContext

_SIGNATURE = b"\x78\x9f\x3e\x22"
_ATTR_HEAD = struct.Struct("<BII")
_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")

_LEVEL_ATTACHMENT = 2
# attribute ids (low 16 bits; the high 16 bits are the attribute's type)
_ATT_BODY = 0x800C
_ATT_ATTACH_DATA = 0x800F
_ATT_ATTACH_TITLE = 0x8010
_ATT_ATTACH_RENDDATA = 0x9002
_ATT_MAPI_PROPS = 0x9003
_ATT_ATTACHMENT = 0x9005

# MAPI property ids and types
_PR_BODY = 0x1000
_PR_RTF_COMPRESSED = 0x1009
_PR_BODY_HTML = 0x1013
_PR_ATTACH_DATA = 0x3701
_PR_ATTACH_FILENAME = 0x3704
_PR_ATTACH_LONG_FILENAME = 0x3707
_PR_ATTACH_MIME_TAG = 0x370E
_PT_STRING8 = 0x001E
_PT_UNICODE = 0x001F
_PT_BINARY = 0x0102
_PT_OBJECT = 0x000D
_MV = 0x1000
_VARIABLE = frozenset({_PT_STRING8, _PT_UNICODE, _PT_BINARY, _PT_OBJECT})
_FIXED = {
    0x0001: 0,  # PT_NULL
    0x0002: 2,  # PT_SHORT
    0x0003: 4,  # PT_LONG
    0x0004: 4,  # PT_FLOAT
    0x0005: 8,  # PT_DOUBLE
    0x0006: 8,  # PT_CURRENCY
    0x0007: 8,  # PT_APPTIME
    0x000A: 4,  # PT_ERROR
    0x000B: 2,  # PT_BOOLEAN
    0x0014: 8,  # PT_I8
    0x0040: 8,  # PT_SYSTIME
    0x0048: 16,  # PT_CLSID
}
#: an embedded object's data starts with the interface id of what it is
_IID_LENGTH = 16

_LZFU_COMPRESSED = 0x75465A4C
_LZFU_RAW = 0x414C454D
_LZFU_DICT = (
    b"{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss "
    b"\\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier"
    b"{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx"
)
_LZFU_TIME_CHECK = 1 << 14


@dataclass
class _Attachment:
    title: str | None = None
    long_name: str | None = None
    mime_tag: str | None = None
    data: bytes | None = None
    #: embedded messages and OLE storages found in the attachment's properties
    objects: list[bytes] = field(default_factory=list)


def extract_tnef(obj: ScanObject, ctx: WalkContext) -> Iterator[Child]:
    """Yield the attachments and bodies of the TNEF stream in ``obj``."""
    data = obj.data
    if bytes(data[:4]) != _SIGNATURE:
        ctx.warn(obj.part, "not a TNEF stream")
        return
    current: _Attachment | None = None
    count = 0
    for level, attr, value in _attributes(data, obj.part, ctx):
        ctx.budget.check_time()
        if attr == _ATT_ATTACH_RENDDATA or (level == _LEVEL_ATTACHMENT and current is None):
            if current is not None:
                count += 1
                yield from _attachment_children(current, count, ctx)
            current = _Attachment()
        if level == _LEVEL_ATTACHMENT and current is not None:
            _attachment_attribute(current, attr, value)
        elif attr == _ATT_BODY:
            yield from _child(ctx, "body.txt", value.rstrip(b"\x00"), content_type="text/plain")
        elif attr == _ATT_MAPI_PROPS:
            yield from _message_bodies(value, ctx)
    if current is not None:
        count += 1
        yield from _attachment_children(current, count, ctx)


def _attributes(data: Buffer, part: str, ctx: WalkContext) -> Iterator[tuple[int, int, bytes]]:
    pos = 6
    size = len(data)
    while pos + _ATTR_HEAD.size <= size:
        level, attr, length = _ATTR_HEAD.unpack(bytes(data[pos : pos + _ATTR_HEAD.size]))
        start = pos + _ATTR_HEAD.size
        if start + length > size:
            ctx.warn(part, "truncated TNEF attribute")
        yield level, attr & 0xFFFF, bytes(data[start : min(size, start + length)])
        pos = start + length + 2


def _attachment_attribute(att: _Attachment, attr: int, value: bytes) -> None:
    if attr == _ATT_ATTACH_DATA:
        att.data = value
    elif attr == _ATT_ATTACH_TITLE:
        att.title = _string8(value)
    elif attr == _ATT_ATTACHMENT:
        for prop, ptype, values in mapi_properties(value):
            if not values:
                continue
            if prop == _PR_ATTACH_LONG_FILENAME or (
                prop == _PR_ATTACH_FILENAME and not att.long_name
            ):
                att.long_name = _prop_string(ptype, values[0]) or att.long_name
            elif prop == _PR_ATTACH_MIME_TAG:
                att.mime_tag = _prop_string(ptype, values[0]).lower() or None
            elif prop == _PR_ATTACH_DATA and ptype & ~_MV == _PT_OBJECT:
                att.objects.append(values[0][_IID_LENGTH:])
            elif prop == _PR_ATTACH_DATA and att.data is None:
                att.data = values[0]


def _attachment_children(att: _Attachment, index: int, ctx: WalkContext) -> Iterator[Child]:
    name = att.long_name or att.title
    label = safe_label(name) if name else f"attachment-{index}"
    yield from _child(ctx, label, att.data or b"", name=name, content_type=att.mime_tag)
    for n, embedded in enumerate(att.objects, 1):
        yield from _child(ctx, f"{label}/object-{n}", embedded)


def _message_bodies(value: bytes, ctx: WalkContext) -> Iterator[Child]:
    for prop, ptype, values in mapi_properties(value):
        if not values:
            continue
        if prop == _PR_BODY:
            text = values[0].rstrip(b"\x00")
            if ptype == _PT_UNICODE:
                text = _prop_string(ptype, values[0]).encode("utf-8")
            yield from _child(ctx, "body.txt", text, content_type="text/plain")
        elif prop == _PR_BODY_HTML:
            yield from _child(ctx, "body.html", values[0].rstrip(b"\x00"), content_type="text/html")
        elif prop == _PR_RTF_COMPRESSED:
            yield from _child(
                ctx, "body.rtf", decompress_rtf(values[0], ctx), content_type="text/rtf"
            )


def _child(
    ctx: WalkContext,
    label: str,
    data: bytes,
    *,
    name: str | None = None,
    content_type: str | None = None,
) -> Iterator[Child]:
    if not data:
        return
    ctx.budget.add_bytes(len(data))
    yield Child(label=label, data=data, name=name, content_type=content_type)


def _string8(value: bytes) -> str:
    return value.split(b"\x00", 1)[0].decode("cp1252", "replace").strip()


def _prop_string(ptype: int, value: bytes) -> str:
    if ptype & ~_MV == _PT_UNICODE:
        return value.decode("utf-16-le", "replace").split("\x00", 1)[0].strip()
    return _string8(value)


def mapi_properties(data: bytes) -> Iterator[tuple[int, int, list[bytes]]]:
    """Parse a MAPI property list: yield ``(id, type, values)``.

    Values of variable-length types are their raw bytes; fixed-size values are
    skipped (returned as an empty list).  Parsing stops at the first property
    whose type is unknown, since its size cannot be known.
    """
    if len(data) < 4:
        return
    (count,) = _U32.unpack_from(data, 0)
    pos = 4
    size = len(data)
    for _ in range(min(count, size // 4)):
        if pos + 4 > size:
            return
        ptype, prop = struct.unpack_from("<HH", data, pos)
        pos += 4
        if prop >= 0x8000:
            pos = _skip_name(data, pos)
            if pos < 0:
                return
        base = ptype & ~_MV
        values: list[bytes] = []
        if base in _VARIABLE:
            pos = _variable_values(data, pos, values)
        elif base in _FIXED:
            width = (_FIXED[base] + 3) & ~3
            if ptype & _MV:
                if pos + 4 > size:
                    return
                pos += 4 + width * _U32.unpack_from(data, pos)[0]
            else:
                pos += width
        else:
            return
        if pos < 0 or pos > size:
            if values:
                yield prop, ptype, values
            return
        yield prop, ptype, values


def _skip_name(data: bytes, pos: int) -> int:
    """Skip a named property's GUID and name; -1 when it runs off the end."""
    pos += 16
    if pos + 8 > len(data):
        return -1
    (kind,) = _U32.unpack_from(data, pos)
    if kind == 0:
        return pos + 8
    length = int(_U32.unpack_from(data, pos + 4)[0])
    return pos + 8 + ((length + 3) & ~3)


def _variable_values(data: bytes, pos: int, values: list[bytes]) -> int:
    size = len(data)
    if pos + 4 > size:
        return -1
    (count,) = _U32.unpack_from(data, pos)
    pos += 4
    for _ in range(min(count, (size - pos) // 4)):
        if pos + 4 > size:
            return -1
        (length,) = _U32.unpack_from(data, pos)
        pos += 4
        values.append(data[pos : pos + length])
        pos += (length + 3) & ~3
    return pos


def decompress_rtf(blob: bytes, ctx: WalkContext) -> bytes:
    """Decompress PR_RTF_COMPRESSED (MS-OXRTFCP); returns b"" when it is not that."""
    if len(blob) < 16:
        return b""
    _size, raw_size, magic, _crc = struct.unpack_from("<IIII", blob, 0)
    body = blob[16:]
    if magic == _LZFU_RAW:
        return body[:raw_size]
    if magic != _LZFU_COMPRESSED:
        return b""
    window = bytearray(4096)
    window[: len(_LZFU_DICT)] = _LZFU_DICT
    write = len(_LZFU_DICT)
    out = bytearray()
    pos, n = 0, len(body)
    tokens = 0
    while pos < n:
        control = body[pos]
        pos += 1
        for bit in range(8):
            if pos >= n:
                return bytes(out)
            if not control & (1 << bit):
                byte = body[pos]
                pos += 1
                out.append(byte)
                window[write] = byte
                write = (write + 1) & 0xFFF
                continue
            if pos + 2 > n:
                return bytes(out)
            (ref,) = struct.unpack_from(">H", body, pos)
            pos += 2
            offset, length = ref >> 4, (ref & 0xF) + 2
            if offset == write:
                return bytes(out)
            for i in range(length):
                byte = window[(offset + i) & 0xFFF]
                out.append(byte)
                window[write] = byte
                write = (write + 1) & 0xFFF
            tokens += 1
            if tokens % _LZFU_TIME_CHECK == 0:
                ctx.budget.check_time()
    return bytes(out)
