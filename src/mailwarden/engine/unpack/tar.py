"""TAR extractor: yields every regular file of an uncompressed tar as a child.

The walker calls :func:`extract_tar` for objects sniffed as TAR; a compressed
tar reaches it after the gzip/bzip2/xz extractor has produced the plain tar.
Headers are read one at a time with :mod:`tarfile` over the in-memory buffer;
member data is copied out in chunks.  Only regular files are yielded: links,
devices, FIFOs and directories carry nothing to scan.  A damaged header ends
the walk through the archive with a warning; members read before it are kept.

Each child has the member name as label, its basename as name, and meta
``{"compressed_size": n, "container": "tar"}``.

SECURITY: hostile input.  Sizes come from produced bytes; a sparse member (which
tarfile expands with zeros) is held to the expansion ratio against the bytes it
really stores.  Member names are labels only; nothing is extracted to disk and
no link is followed.  No privileges needed.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from typing import Any

from mailwarden.engine.limits import LimitExceeded
from mailwarden.engine.objects import BufferReader, Child, ScanObject, WalkContext
from mailwarden.engine.unpack._stream import child, lenient, read_into


@lenient("tar")
def extract_tar(obj: ScanObject, ctx: WalkContext) -> Iterator[Child]:
    """Yield each regular file of a tar archive; see the module docstring."""
    headers = 0
    with tarfile.open(fileobj=BufferReader(obj.data), mode="r:") as tf:
        while True:
            ctx.budget.check_time()
            info = tf.next()
            if info is None:
                return
            headers += 1
            # tarfile keeps every header it has read; cap them like files
            if headers > ctx.limits.max_files:
                raise LimitExceeded(f"limit: more than {ctx.limits.max_files} files", fatal=True)
            if not info.isreg():
                continue
            stored = _stored_size(info)
            fh = tf.extractfile(info)
            if fh is None:
                continue
            sink = ctx.spool()
            with fh:
                read_into(fh.read, sink, ctx, stored)
            yield child(info.name, sink.getvalue(), "tar", stored)


def _stored_size(info: tarfile.TarInfo) -> int:
    """Bytes the member really occupies in the archive (less than its size if sparse)."""
    # tarfile sets ``sparse`` to a list of (offset, size) runs; its stubs say otherwise
    runs: Any = info.sparse
    if runs:
        return max(1, sum(int(size) for _offset, size in runs))
    return info.size
