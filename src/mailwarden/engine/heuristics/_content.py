"""Cheap content probes the file-kind sniffer does not make.

Used by ``_check``: :func:`is_disk_image` recognises mountable images that
``sniff`` calls plain binary (UDF, VHD, VHDX, DMG), and :func:`is_encrypted_archive`
reads just enough of a ZIP, 7z or RAR archive to see that it needs a password.
Only what is stored in clear counts: a 7z whose header is itself compressed
(the default) but not encrypted hides its coders, and RAR5 per-file
encryption sits in extra records, so those are left to the extractor.
Each probe reads a few fixed offsets or walks a bounded number of headers, so
it costs microseconds whatever the archive's size.

SECURITY: every length and offset read from the data is checked against the
buffer before use; a probe answers False on anything it does not understand
and never raises on malformed input.
"""

from __future__ import annotations

from mailwarden.engine.filetype import FileKind
from mailwarden.engine.objects import Buffer

# enum members bound once: attribute lookups on an Enum class are slow in the hot path
_ISO, _BINARY = FileKind.ISO, FileKind.BINARY
_ZIP, _SEVENZ, _RAR = FileKind.ZIP, FileKind.SEVENZ, FileKind.RAR
_UDF_DESCRIPTORS = (b"BEA01", b"NSR02", b"NSR03")
_ZIP_LOCAL = b"PK\x03\x04"
#: encrypted archives usually encrypt every member, so the first few tell
_ZIP_MAX_HEADERS = 16
_ZIP_ENCRYPTED = 0x0001
_ZIP_DATA_DESCRIPTOR = 0x0008
#: a 7z coder record for AES-256 + SHA-256: flags 0x24 (4-byte id, has
#: properties), then the id 06 F1 07 01
_7Z_AES_CODER = b"\x24\x06\xf1\x07\x01"
_7Z_MAX_HEADER = 1 << 20
_RAR4 = b"Rar!\x1a\x07\x00"
_RAR5 = b"Rar!\x1a\x07\x01\x00"
_RAR4_MAIN_PASSWORD = 0x0080
_RAR4_FILE_PASSWORD = 0x0004
_RAR5_ENCRYPTION_HEADER = 4


def _u16(data: Buffer, off: int) -> int:
    return int.from_bytes(data[off : off + 2], "little")


def _u32(data: Buffer, off: int) -> int:
    return int.from_bytes(data[off : off + 4], "little")


def _u64(data: Buffer, off: int) -> int:
    return int.from_bytes(data[off : off + 8], "little")


def is_disk_image(data: Buffer, kind: FileKind) -> bool:
    """True for ISO 9660 and UDF, VHD, VHDX and Apple DMG images."""
    if kind is _ISO:
        return True
    if kind is not _BINARY:
        return False
    head = bytes(data[:8])
    if head in (b"vhdxfile", b"conectix"):
        return True
    if bytes(data[0x8001:0x8006]) in _UDF_DESCRIPTORS:
        return True
    # fixed VHDs carry their footer only at the end; DMGs end with a "koly" trailer
    tail = bytes(data[-512:-504]) if len(data) >= 512 else b""
    return tail == b"conectix" or tail[:4] == b"koly"


def _zip_encrypted(data: Buffer) -> bool:
    off = 0
    for _ in range(_ZIP_MAX_HEADERS):
        if bytes(data[off : off + 4]) != _ZIP_LOCAL or off + 30 > len(data):
            return False
        flags = _u16(data, off + 6)
        if flags & _ZIP_ENCRYPTED:
            return True
        size = _u32(data, off + 18)
        if flags & _ZIP_DATA_DESCRIPTOR and size == 0:
            # the size follows the data; finding it would mean decompressing
            return False
        off += 30 + _u16(data, off + 26) + _u16(data, off + 28) + size
    return False


def _7z_encrypted(data: Buffer) -> bool:
    if len(data) < 32:
        return False
    start = 32 + _u64(data, 12)
    size = _u64(data, 20)
    if size > _7Z_MAX_HEADER or start + size > len(data):
        return False
    # the coder list of an encoded or plain header is stored in clear
    return _7Z_AES_CODER in bytes(data[start : start + size])


def _vint(data: Buffer, off: int) -> tuple[int, int]:
    value = shift = 0
    for i in range(10):
        if off + i >= len(data):
            return -1, off
        byte = data[off + i]
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, off + i + 1
    return -1, off


def _rar_encrypted(data: Buffer) -> bool:
    if bytes(data[:8]) == _RAR5:
        # CRC32, header size, then the type of the first header
        _, off = _vint(data, 12)
        htype, _ = _vint(data, off)
        return htype == _RAR5_ENCRYPTION_HEADER
    if bytes(data[:7]) != _RAR4 or len(data) < 14:
        return False
    if data[9] != 0x73:
        return False
    if _u16(data, 10) & _RAR4_MAIN_PASSWORD:
        return True
    first = 7 + _u16(data, 12)
    if first + 7 > len(data) or data[first + 2] != 0x74:
        return False
    return bool(_u16(data, first + 3) & _RAR4_FILE_PASSWORD)


def is_encrypted_archive(data: Buffer, kind: FileKind) -> bool:
    """True when a ZIP, 7z or RAR archive visibly needs a password."""
    if kind is _ZIP:
        return _zip_encrypted(data)
    if kind is _SEVENZ:
        return _7z_encrypted(data)
    if kind is _RAR:
        return _rar_encrypted(data)
    return False
