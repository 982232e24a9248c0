"""7z extractor: yields the members of a 7-Zip archive as children, through py7zr.

The walker calls :func:`extract_7z` for objects sniffed as SEVENZ.  py7zr reads
the headers; members are decoded by py7zr's own worker into one
:class:`~mailwarden.engine.objects.Spool` per member (through its
``WriterFactory``/``Py7zIO`` writer API), so output streams chunk by chunk into
the budget instead of being built in memory.  Children are yielded once the
archive has been decoded (a solid block has to be decoded in order anyway).

An encrypted header or member is reported as ``encrypted archive``.  py7zr
sizes its decoding steps from the declared member size, so members whose
declared size exceeds what the budget still allows are refused up front
(unscanned with the limit as reason), together with the members behind them in
the same solid block, which could only be reached by decoding through them.

Each child has the member name as label, its basename as name, and meta
``{"compressed_size": n, "container": "7z"}`` (n is the whole archive's size
when the member has no packed size of its own, as inside a solid block).

SECURITY: hostile input.  Produced bytes are charged per chunk and the ratio
and clock checked per chunk, whatever the header says; member names are only
labels: members are handed to py7zr's worker by index with an in-memory writer,
so no name reaches py7zr's path handling or the file system.  The step size of
py7zr's decoder is capped here (a process-wide setting of py7zr) so one step
never holds more than a few MiB.  No privileges needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any, cast

import py7zr
import py7zr.py7zr as _py7zr_core
from py7zr.compressor import SupportedMethods
from py7zr.io import MemIO, Py7zIO, WriterFactory

from mailwarden.engine.limits import LimitExceeded
from mailwarden.engine.objects import BufferReader, Child, ScanObject, Spool, WalkContext
from mailwarden.engine.unpack._stream import OUT_STEP, child, lenient, member_part

# py7zr asks its decoder for min(declared size, this) bytes per step; its own
# default is up to 128 MB, which would put a whole large member in memory at once
_py7zr_core.get_memory_limit = lambda: OUT_STEP  # type: ignore[attr-defined]


class _SpoolWriter(Py7zIO):
    """A py7zr output that streams into a spool, checking limits per chunk."""

    def __init__(self, ctx: WalkContext, packed: int) -> None:
        self._ctx = ctx
        self._packed = packed
        self.spool: Spool = ctx.spool()

    def write(self, s: bytes | bytearray) -> int:
        self._ctx.budget.check_time()
        self.spool.write(s)
        self._ctx.budget.check_ratio(self._packed, self.spool.size)
        return len(s)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def flush(self) -> None:
        return None

    def size(self) -> int:
        return self.spool.size


class _Factory(WriterFactory):
    """Hands py7zr one spool writer per member, keyed by the member's index."""

    def __init__(self, ctx: WalkContext, packed: dict[str, int]) -> None:
        self._ctx = ctx
        self._packed = packed
        self.writers: dict[str, _SpoolWriter] = {}

    def create(self, filename: str) -> Py7zIO:
        writer = _SpoolWriter(self._ctx, self._packed[filename])
        self.writers[filename] = writer
        return writer


@lenient("7z")
def extract_7z(obj: ScanObject, ctx: WalkContext) -> Iterator[Child]:
    """Yield each member of a 7z archive; see the module docstring."""
    try:
        archive = py7zr.SevenZipFile(cast(IO[bytes], BufferReader(obj.data)), mode="r")
    except py7zr.PasswordRequired:
        ctx.unscanned(obj.part, "encrypted archive")
        return
    with archive:
        wanted = _select(obj, ctx, archive)
        if not wanted:
            return
        packed = {str(f.id): _packed_size(f, len(obj.data)) for f in wanted}
        factory = _Factory(ctx, packed)
        for f in wanted:
            archive.worker.register_filelike(f.id, MemIO(str(f.id), factory))
        try:
            archive.worker.extract(archive.fp, None, parallel=False)
        except LimitExceeded:
            raise
        except Exception as exc:  # py7zr fails in many ways on hostile input
            # members decoded before the damage are still scanned
            ctx.warn(obj.part, f"7z: malformed ({type(exc).__name__}: {exc})")
        for f in wanted:
            writer = factory.writers.get(str(f.id))
            if writer is not None:
                yield child(f.filename, writer.spool.getvalue(), "7z", packed[str(f.id)])


def _select(obj: ScanObject, ctx: WalkContext, archive: Any) -> list[Any]:
    """The members to decode; notes why each other file member is left out."""
    remaining = ctx.limits.max_total_bytes - ctx.budget.total_bytes
    wanted: list[Any] = []
    blocked: set[int] = set()  # folders cut short by a refused member
    for f in archive.files:
        # scan every stream whatever its mode bits claim (a "symlink" may hold a program)
        if f.is_directory and f.emptystream:
            continue
        part = member_part(obj, f.filename)
        folder = f.folder
        if folder is not None and SupportedMethods.needs_password(folder.coders):
            ctx.unscanned(part, "encrypted archive")
            blocked.add(id(folder))
            continue
        if folder is not None and id(folder) in blocked:
            ctx.unscanned(part, "limit: behind a refused member in a solid block")
            continue
        declared = int(f.uncompressed or 0)
        if declared > remaining:
            ctx.unscanned(
                part, f"limit: declares {declared} bytes, over the {remaining} bytes left"
            )
            if folder is not None:
                blocked.add(id(folder))
            continue
        remaining -= declared
        wanted.append(f)
    return wanted


def _packed_size(member: Any, archive_size: int) -> int:
    # in a solid block only the first member has a packed size of its own
    own = member.compressed
    return int(own) if own else archive_size
