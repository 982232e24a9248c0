"""RAR extractor: yields the members of a RAR archive, through rarfile and a backend tool.

The walker calls :func:`extract_rar` for objects sniffed as RAR.  rarfile parses
the headers in Python; compressed members are decoded by an external tool
(``unrar``, ``unar``, ``7z`` or ``bsdtar``, whichever works first).  Without one
the whole archive is reported unscanned (``rar: no reader installed``); a
member the tool cannot decode (e.g. 7z built without the RAR codec) is reported
unscanned on its own.  Encrypted headers or members are ``encrypted archive``.

Each child has the member name as label, its basename as name, and meta
``{"compressed_size": n, "container": "rar"}``.

SECURITY: hostile input.  The decoder runs as a child process with our own
privileges, reading a private temporary copy made by rarfile (``mkstemp``, name
not derived from the archive) and writing to a pipe that we read in chunks,
charging the budget and checking the ratio per chunk; closing the pipe stops
the tool when a limit trips.  Member names are labels only.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import rarfile

from mailwarden.engine.objects import BufferReader, Child, ScanObject, WalkContext
from mailwarden.engine.unpack._stream import child, lenient, member_part, read_into


@functools.cache
def reader_available() -> bool:
    """True when rarfile found a working decoder tool (checked once per process)."""
    try:
        rarfile.tool_setup()
    except rarfile.RarCannotExec:
        return False
    return True


@lenient("rar")
def extract_rar(obj: ScanObject, ctx: WalkContext) -> Iterator[Child]:
    """Yield each member of a RAR archive; see the module docstring."""
    if not reader_available():
        ctx.unscanned(obj.part, "rar: no reader installed")
        return
    with rarfile.RarFile(BufferReader(obj.data)) as rf:
        members = rf.infolist()
        damage = rf.strerror()
        if damage:
            ctx.warn(obj.part, f"rar: {damage}")
        if not members and rf.needs_password():
            ctx.unscanned(obj.part, "encrypted archive")
            return
        for info in members:
            ctx.budget.check_time()
            if info.is_dir() or info.filename is None:
                continue
            part = member_part(obj, info.filename)
            if info.needs_password():
                ctx.unscanned(part, "encrypted archive")
                continue
            sink = ctx.spool()
            try:
                with rf.open(info) as fh:
                    read_into(fh.read, sink, ctx, max(1, info.compress_size or 0))
            except rarfile.Error as exc:
                ctx.unscanned(part, f"rar: member unreadable ({type(exc).__name__})")
                if not sink.size:
                    continue
            yield child(info.filename, sink.getvalue(), "rar", info.compress_size or 0)
