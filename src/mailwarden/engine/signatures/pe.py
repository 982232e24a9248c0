"""A tiny PE section-table reader for ClamAV ``.mdb``/``.msb`` section hashes.

:func:`pe_sections` returns ``(offset, size)`` of each section's raw data as
ClamAV hashes it (``PointerToRawData``, ``SizeOfRawData``, clipped to the
file).  It reads only the DOS header, the COFF header and the section table;
anything inconsistent yields fewer sections or none, never an exception.

SECURITY: every field comes from hostile input and is bounds-checked; at most
:data:`MAX_SECTIONS` entries are read, so the work is constant per file.
"""

from __future__ import annotations

import struct

from mailwarden.engine.objects import Buffer

#: The PE format caps the section count at 96.
MAX_SECTIONS = 96
_SECTION = struct.Struct("<8sIIIIIIHHI")


def pe_sections(data: Buffer) -> list[tuple[int, int]]:
    """Raw-data (offset, size) of each section with a non-empty body."""
    size = len(data)
    if size < 0x40 or bytes(data[:2]) != b"MZ":
        return []
    (pe_off,) = struct.unpack("<I", data[0x3C:0x40])
    if pe_off + 24 > size or bytes(data[pe_off : pe_off + 4]) != b"PE\x00\x00":
        return []
    count, opt_size = struct.unpack("<H12xH", data[pe_off + 6 : pe_off + 22])
    table = pe_off + 24 + opt_size
    out: list[tuple[int, int]] = []
    for i in range(min(count, MAX_SECTIONS)):
        start = table + i * _SECTION.size
        if start + _SECTION.size > size:
            break
        fields = _SECTION.unpack(data[start : start + _SECTION.size])
        raw_size, raw_ptr = fields[3], fields[4]
        if raw_size == 0 or raw_ptr >= size:
            continue
        out.append((raw_ptr, min(raw_size, size - raw_ptr)))
    return out
