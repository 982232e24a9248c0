"""Compile one Hyperscan database: in this process, or as a child process of its own.

:func:`compile_to_bytes` turns ``(expression, id, flags)`` entries into a
serialised block-mode database plus the ids of the entries Hyperscan
refuses (found by bisection, so one bad pattern costs only itself).  The
matcher runs big groups in child processes (see ``matchers``): this file is
then run as a script, by path and with ``-P``, so a child imports nothing
but the standard library and Hyperscan and is ready to read its entries in
a few hundredths of a second; it must stay free of imports from the package.

Protocol of the child: stdin carries ``u32 id | u32 flags | u32 length |
expression`` entries up to EOF; stdout gets ``u32 count | count x u32
refused id | database``.  No entries at all: an empty answer, exit 0.

SECURITY: expressions come from signature databases; Hyperscan's compiler
bounds what it accepts and reports the rest as errors.  The child needs no
privilege and writes only to its stdout.
"""

from __future__ import annotations

import struct
import sys
from typing import Any

Entry = tuple[bytes, int, int]
ENTRY = struct.Struct(">III")


def encode_entries(entries: list[Entry]) -> bytes:
    return b"".join(ENTRY.pack(pid, flags, len(expr)) + expr for expr, pid, flags in entries)


def decode_entries(data: bytes) -> list[Entry]:
    entries: list[Entry] = []
    pos = 0
    while pos + ENTRY.size <= len(data):
        pid, flags, size = ENTRY.unpack_from(data, pos)
        pos += ENTRY.size
        entries.append((data[pos : pos + size], pid, flags))
        pos += size
    return entries


def compile_to_bytes(entries: list[Entry]) -> tuple[bytes, list[int]]:
    """The serialised database of ``entries`` (empty: none compiled) and the refused ids."""
    import hyperscan

    rejected: list[int] = []
    db = _compile_isolating(hyperscan, entries, rejected)
    return (b"" if db is None else bytes(hyperscan.dumpb(db))), sorted(rejected)


def compile_one(hs: Any, entries: list[Entry]) -> Any:
    db = hs.Database(mode=hs.HS_MODE_BLOCK)
    db.compile(
        expressions=[e[0] for e in entries],
        ids=[e[1] for e in entries],
        elements=len(entries),
        flags=[e[2] for e in entries],
    )
    return db


def _refused(hs: Any, entries: list[Entry]) -> list[int]:
    """Ids of the entries Hyperscan refuses, found by bisection."""
    if not entries:
        return []
    try:
        compile_one(hs, entries)
    except hs.error:
        if len(entries) == 1:
            return [entries[0][1]]
        mid = len(entries) // 2
        return _refused(hs, entries[:mid]) + _refused(hs, entries[mid:])
    return []


def _compile_isolating(hs: Any, entries: list[Entry], rejected: list[int]) -> Any:
    """Compile ``entries``; the ones Hyperscan refuses go to ``rejected``."""
    if not entries:
        return None
    try:
        return compile_one(hs, entries)
    except hs.error:
        pass
    rejected.extend(_refused(hs, entries))
    bad = set(rejected)
    good = [e for e in entries if e[1] not in bad]
    return compile_one(hs, good) if good else None


def main() -> None:
    """The child: entries from stdin, the answer to stdout."""
    blob, rejected = compile_to_bytes(decode_entries(sys.stdin.buffer.read()))
    sys.stdout.buffer.write(struct.pack(f">I{len(rejected)}I", len(rejected), *rejected) + blob)
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
