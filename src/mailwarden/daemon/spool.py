"""Where a streamed message waits for its worker: memory first, then an unlinked file.

The connection handler appends INSTREAM/MAILSCAN chunks as they arrive::

    spool = Spool(threshold=1 << 20, directory=None)
    spool.write(chunk)
    job = spool.job_parts()   # (bytes, None) while small, (b"", fd) once spooled
    spool.close()

Up to ``threshold`` bytes stay in memory and travel to the worker inside the
job frame; past it everything moves to a temporary file that is unlinked at
once (``O_TMPFILE`` where the file system has it) and its descriptor is passed
to the worker, which maps it.  Memory per request is therefore bounded by the
threshold whatever the stream's length.

SECURITY: the spool holds hostile bytes but never interprets them.  Files are
created 0600 in the configured folder and have no name, so nothing else can
open them and nothing is left behind if the daemon dies.
"""

from __future__ import annotations

import os
import tempfile


class Spool:
    def __init__(self, threshold: int, directory: str | None = None) -> None:
        self.threshold = threshold
        self.directory = directory or None
        self.size = 0
        self._memory = bytearray()
        self._fd: int | None = None

    def write(self, data: bytes | memoryview) -> None:
        self.size += len(data)
        if self._fd is None and len(self._memory) + len(data) <= self.threshold:
            self._memory += data
            return
        if self._fd is None:
            self._fd = _unlinked_file(self.directory)
            _write_all(self._fd, self._memory)
            self._memory = bytearray()
        _write_all(self._fd, data)

    @property
    def spooled(self) -> bool:
        return self._fd is not None

    def job_parts(self) -> tuple[bytes | memoryview, int | None]:
        """What the worker gets: the bytes themselves, or the file's descriptor."""
        if self._fd is not None:
            return b"", self._fd
        return memoryview(self._memory), None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._memory = bytearray()


def _unlinked_file(directory: str | None) -> int:
    folder = directory or tempfile.gettempdir()
    flags = getattr(os, "O_TMPFILE", 0)
    if flags:
        try:
            return os.open(folder, flags | os.O_RDWR | os.O_CLOEXEC, 0o600)
        except OSError:
            pass  # a file system without O_TMPFILE: fall back to create-and-unlink
    fd, name = tempfile.mkstemp(prefix="mailwarden-spool-", dir=folder)
    os.unlink(name)
    return fd


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
