"""Streaming helpers shared by the archive extractors: bounded decoding and copying.

Every extractor in this package turns compressed input into a :class:`Spool`
through :func:`pump` (a decompressor fed in small input steps, asked for at most
:data:`OUT_STEP` bytes per call) or :func:`copy` (stored data, in chunks), so no
member is ever held whole in memory and every chunk is charged to the budget as
it appears.  :func:`lenient` wraps an extractor so that malformed input becomes
a warning instead of an exception.

SECURITY: the input is hostile.  Output sizes are counted from bytes produced,
never taken from headers; the expansion ratio and the clock are checked after
every step, so a bomb stops within one step of a limit.  Needs no privileges
and touches no file (spools use anonymous temporary files).
"""

from __future__ import annotations

import functools
import posixpath
from collections.abc import Callable, Iterator
from typing import Protocol

from mailwarden.engine.limits import LimitExceeded
from mailwarden.engine.objects import Buffer, Child, ScanObject, Spool, WalkContext

#: what the walker calls for one file kind
Extractor = Callable[[ScanObject, WalkContext], Iterator[Child]]

#: largest output asked of a decompressor in one call
OUT_STEP = 1024 * 1024
#: compressed bytes handed to a decompressor in one call
IN_STEP = 64 * 1024
#: chunk size for stored (uncompressed) data
COPY_STEP = 1024 * 1024


class Decoder(Protocol):
    """The incremental interface shared by zlib, bz2 and lzma decompressors."""

    def decompress(self, data: bytes, max_length: int, /) -> bytes: ...

    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...


def pump(
    dec: Decoder,
    src: memoryview,
    sink: Spool,
    ctx: WalkContext,
    *,
    in_step: int = IN_STEP,
) -> tuple[int, bool]:
    """Decode ``src`` into ``sink`` until the stream ends or the input runs out.

    Returns ``(consumed, finished)``: the input bytes used up to the end of the
    stream (all of them when it did not end) and whether the end was reached.
    """
    pos = 0
    tail = b""
    more_pending = False
    start_size = sink.size
    while not dec.eof:
        ctx.budget.check_time()
        if tail:
            data = tail
        elif pos < len(src):
            data = bytes(src[pos : pos + in_step])
            pos += len(data)
        elif more_pending:
            # a full step came out: the decoder may hold more output without new input
            data = b""
        else:
            break
        out = dec.decompress(data, OUT_STEP)
        # zlib hands back the input it did not read; bz2 and lzma keep it inside
        tail = getattr(dec, "unconsumed_tail", b"")
        more_pending = len(out) >= OUT_STEP
        sink.write(out)
        ctx.budget.check_ratio(pos - len(tail), sink.size - start_size)
    if dec.eof:
        return pos - len(tail) - len(dec.unused_data), True
    return pos, False


def copy(src: memoryview, sink: Spool, ctx: WalkContext) -> None:
    """Copy stored bytes into ``sink`` in chunks, charging the budget per chunk."""
    for pos in range(0, len(src), COPY_STEP):
        ctx.budget.check_time()
        sink.write(src[pos : pos + COPY_STEP])


def read_into(read: Callable[[int], bytes], sink: Spool, ctx: WalkContext, packed: int) -> None:
    """Drain a file-like ``read`` into ``sink``; ``packed`` input bytes made the output."""
    while True:
        ctx.budget.check_time()
        chunk = read(COPY_STEP)
        if not chunk:
            return
        sink.write(chunk)
        ctx.budget.check_ratio(packed, sink.size)


def member_part(obj: ScanObject, member: str) -> str:
    """The display path of an archive member, for notes about it."""
    return f"{obj.part}/{member}" if obj.path else member


def basename(label: str) -> str | None:
    """The file name part of a member name, accepting both slash styles."""
    name = posixpath.basename(label.replace("\\", "/"))
    return name or None


def child(label: str, data: Buffer, container: str, compressed_size: int) -> Child:
    """Build the :class:`Child` every archive extractor yields for a member."""
    return Child(
        label=label,
        data=data,
        name=basename(label),
        meta={"compressed_size": compressed_size, "container": container},
    )


def lenient(container: str) -> Callable[[Extractor], Extractor]:
    """Turn any parse error of an extractor into a warning on the object.

    Children already yielded stay yielded; only :class:`LimitExceeded` escapes,
    as the walker expects.
    """

    def wrap(extract: Extractor) -> Extractor:
        @functools.wraps(extract)
        def run(obj: ScanObject, ctx: WalkContext) -> Iterator[Child]:
            try:
                yield from extract(obj, ctx)
            except LimitExceeded:
                raise
            except Exception as exc:  # hostile input can upset any parser in any way
                ctx.warn(obj.part, f"{container}: malformed ({type(exc).__name__}: {exc})")

        return run

    return wrap
