"""Scan objects: the unit the engine walks, and the spool that holds their bytes.

The walker starts from one :class:`ScanObject` (the raw message), asks the
extractor registered for its file kind for :class:`Child` objects (MIME parts,
archive members, PDF streams...), and repeats.  Small payloads are ``bytes``;
large ones are spilled by :class:`Spool` to an unlinked temporary file and read
through a read-only ``mmap``, so memory stays bounded whatever the input.

Extractor contract (see ``engine/unpack``)::

    def extract_zip(obj: ScanObject, ctx: WalkContext) -> Iterator[Child]

An extractor streams its output through ``ctx.spool()`` and charges
``ctx.budget`` per chunk; it reports problems that are not errors (an encrypted
member, a ``message/partial``) through ``ctx.unscanned(...)`` and keeps going.
It must never raise anything but :class:`~mailwarden.engine.limits.LimitExceeded`
(the walker catches every other exception as a malformed container, scans what
was produced so far, and logs it).

SECURITY: names in objects come from hostile input and are labels only; the
temporary files are created with ``tempfile`` (mode 0600, unlinked at once), so
no name ever reaches the file system.
"""

from __future__ import annotations

import contextlib
import io
import mmap
import tempfile
from dataclasses import dataclass, field
from typing import IO, Any

from mailwarden.engine.limits import Budget, Limits

#: A read-only payload: both support ``len()``, slicing to ``bytes``, ``find``
#: and the buffer protocol (hashlib, zlib, hyperscan and yara accept both).
Buffer = bytes | mmap.mmap


@dataclass(slots=True)
class ScanObject:
    """One payload at one place in the message tree."""

    data: Buffer
    #: labels from the root, joined with "/" for display: ("2/invoice.zip", "setup.exe")
    path: tuple[str, ...] = ()
    #: the name the sender gave it (attachment file name, archive member name)
    name: str | None = None
    #: declared MIME type, lower case, without parameters
    content_type: str | None = None
    depth: int = 0
    #: kind of the container it came from ("mime", "zip", "tar", "pdf", ...), None at the root
    parent_kind: str | None = None
    #: extractor-specific facts (e.g. {"encrypted": True}) for heuristics
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def part(self) -> str:
        return "/".join(self.path)

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(slots=True)
class Child:
    """What an extractor yields; the walker turns it into a :class:`ScanObject`.

    ``label`` is this child's path element: a MIME section number with the file
    name when there is one (``"2/invoice.zip"``), or an archive member name.
    """

    label: str
    data: Buffer
    name: str | None = None
    content_type: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class Spool:
    """Collects bytes in memory, spilling to an unlinked temp file past a threshold.

    ``write`` charges the budget, so a bomb stops while it is being written.
    ``getvalue`` returns ``bytes`` or a read-only ``mmap`` of the temp file.
    """

    def __init__(self, ctx: WalkContext, *, charge: bool = True) -> None:
        self._ctx = ctx
        self._charge = charge
        self._mem = io.BytesIO()
        self._file: IO[bytes] | None = None
        self.size = 0

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        n = len(chunk)
        if not n:
            return
        if self._charge:
            self._ctx.budget.add_bytes(n)
        self.size += n
        if self._file is None and self.size > self._ctx.limits.spool_threshold:
            self._file = tempfile.TemporaryFile(prefix="mailwarden-")  # noqa: SIM115
            self._file.write(self._mem.getbuffer())
            self._mem = io.BytesIO()
        if self._file is not None:
            self._file.write(chunk)
        else:
            self._mem.write(chunk)

    def getvalue(self) -> Buffer:
        if self._file is None:
            return self._mem.getvalue()
        self._file.flush()
        if self.size == 0:
            return b""
        mapped = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        self._ctx.keep(self._file, mapped)
        self._file = None
        return mapped


class BufferReader(io.RawIOBase):
    """A seekable, read-only file object over a :data:`Buffer` without copying it."""

    def __init__(self, data: Buffer) -> None:
        super().__init__()
        self._view = memoryview(data)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = min(len(b), len(self._view) - self._pos)
        if n <= 0:
            return 0
        b[:n] = self._view[self._pos : self._pos + n]
        self._pos += n
        return n

    def read(self, size: int | None = -1) -> bytes:
        end = len(self._view)
        if size is not None and size >= 0:
            end = min(end, self._pos + size)
        out = bytes(self._view[self._pos : end])
        self._pos = max(self._pos, end)
        return out

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self._view.release()
        super().close()


class WalkContext:
    """Per-message state shared by the walker and every extractor."""

    def __init__(self, limits: Limits, budget: Budget | None = None) -> None:
        self.limits = limits
        self.budget = budget or Budget(limits)
        #: (part, reason) for everything that could not be scanned
        self.unscanned_notes: list[tuple[str, str]] = []
        #: (part, message) for malformed containers that were read leniently
        self.warnings: list[tuple[str, str]] = []
        self._held: list[Any] = []

    def spool(self, *, charge: bool = True) -> Spool:
        return Spool(self, charge=charge)

    def unscanned(self, part: str, reason: str) -> None:
        self.unscanned_notes.append((part, reason))

    def warn(self, part: str, message: str) -> None:
        self.warnings.append((part, message))

    def keep(self, *resources: Any) -> None:
        """Hold temp files and maps until :meth:`close` (end of the message)."""
        self._held.extend(resources)

    def close(self) -> None:
        for res in reversed(self._held):
            # a memoryview still exported keeps an mmap open; the file closes
            # anyway and the kernel frees both with the last reference
            with contextlib.suppress(BufferError, OSError, ValueError):
                res.close()
        self._held.clear()
