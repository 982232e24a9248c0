"""Resource limits for one message's walk, and the budget that enforces them.

Every extractor charges the :class:`Budget` as it expands data (chunk by chunk,
so a bomb is stopped while it streams, not after) and the walker charges it for
every object and every level of nesting.  Going over a limit raises
:class:`LimitExceeded`; the walker turns it into an ``unscanned`` verdict with
the limit named, never into ``clean``.

SECURITY: this is the engine's defence against decompression bombs, deep
nesting and slow inputs.  It trusts nothing about the input: sizes are counted
from bytes actually produced, never from headers that claim a size.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-message limits; defaults documented in docs/configuration.md."""

    max_depth: int = 16
    max_files: int = 10_000
    max_total_bytes: int = 500_000_000
    max_ratio: float = 200.0
    #: the ratio is only judged once a member has expanded past this many bytes,
    #: so a small, very compressible file is not called a bomb
    ratio_floor: int = 1 * MiB
    max_seconds: float = 60.0
    #: objects larger than this are spooled to an unlinked temp file and mapped
    spool_threshold: int = 16 * MiB
    #: a header block larger than this is scanned raw but not parsed further
    max_header_bytes: int = 1 * MiB
    #: MIME parts per message beyond which the rest is unscanned
    max_mime_parts: int = 20_000


class LimitExceeded(Exception):
    """A limit was hit; ``reason`` is shown to people (``limit: depth 17 > 16``).

    ``fatal`` limits (time, total bytes) stop the whole walk; the others only
    stop the subtree where they occurred.
    """

    def __init__(self, reason: str, *, fatal: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fatal = fatal


class Budget:
    """Counts what one message's walk has expanded so far."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._deadline = clock() + limits.max_seconds
        self.files = 0
        self.total_bytes = 0

    def check_depth(self, depth: int) -> None:
        if depth > self.limits.max_depth:
            raise LimitExceeded(f"limit: nesting depth over {self.limits.max_depth}")

    def add_file(self) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            raise LimitExceeded(f"limit: more than {self.limits.max_files} files", fatal=True)

    def add_bytes(self, n: int) -> None:
        """Charge ``n`` freshly expanded bytes; call per chunk while streaming."""
        self.total_bytes += n
        if self.total_bytes > self.limits.max_total_bytes:
            raise LimitExceeded(
                f"limit: more than {self.limits.max_total_bytes} expanded bytes", fatal=True
            )

    def check_ratio(self, compressed: int, expanded: int) -> None:
        """Raise when ``expanded`` bytes came out of ``compressed`` input bytes."""
        if expanded < self.limits.ratio_floor:
            return
        if expanded > self.limits.max_ratio * max(compressed, 1):
            raise LimitExceeded(f"limit: expansion ratio over {self.limits.max_ratio:g}x")

    def check_time(self) -> None:
        if self._clock() > self._deadline:
            raise LimitExceeded(f"limit: scan time over {self.limits.max_seconds:g} s", fatal=True)
