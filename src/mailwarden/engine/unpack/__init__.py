"""Extractor registry: which function opens which kind of container.

The walker sniffs each object's :class:`~mailwarden.engine.filetype.FileKind`,
calls its entry in :data:`EXTRACTORS` (or :func:`extractor_for`, which returns
None for kinds with no extractor) and scans every
:class:`~mailwarden.engine.objects.Child` it yields.  Extractor modules are
imported on first use, so one that cannot load (a missing optional reader)
costs only its own kind, never the registry; its objects are then reported
unscanned.  Every extractor follows the contract in
``engine/objects.py``: stream output through ``ctx.spool()``, check limits per
chunk, report what cannot be read with ``ctx.unscanned``/``ctx.warn``, and let
only ``LimitExceeded`` escape.

SECURITY: the registry itself reads no input.  Each extractor module states
its own stance; none writes member names to the file system.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterator

from mailwarden.engine.filetype import FileKind
from mailwarden.engine.objects import Child, ScanObject, WalkContext
from mailwarden.engine.unpack._stream import Extractor

__all__ = ["EXTRACTORS", "Extractor", "extractor_for"]

#: kind -> "module:function" of its extractor
_TARGETS: dict[FileKind, str] = {
    FileKind.ZIP: "mailwarden.engine.unpack.zip:extract_zip",
    FileKind.TAR: "mailwarden.engine.unpack.tar:extract_tar",
    FileKind.GZIP: "mailwarden.engine.unpack.compress:extract_gzip",
    FileKind.BZIP2: "mailwarden.engine.unpack.compress:extract_bzip2",
    FileKind.XZ: "mailwarden.engine.unpack.compress:extract_xz",
    FileKind.SEVENZ: "mailwarden.engine.unpack.sevenzip:extract_7z",
    FileKind.RAR: "mailwarden.engine.unpack.rar:extract_rar",
    FileKind.TNEF: "mailwarden.engine.unpack.tnef:extract_tnef",
    FileKind.PDF: "mailwarden.engine.unpack.pdf:extract_pdf",
    FileKind.OLE2: "mailwarden.engine.unpack.ole2:extract_ole2",
    FileKind.MAIL: "mailwarden.engine.mime:extract_mail",
    FileKind.TEXT: "mailwarden.engine.mime:extract_text",
    FileKind.HTML: "mailwarden.engine.mime:extract_text",
}


@functools.cache
def extractor_for(kind: FileKind) -> Extractor | None:
    """The extractor for ``kind``, or None when it has none or it cannot be loaded."""
    target = _TARGETS.get(kind)
    if target is None:
        return None
    module_name, _, func_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    extract: Extractor | None = getattr(module, func_name, None)
    return extract


def _deferred(kind: FileKind) -> Extractor:
    """An extractor that loads the real one on first call.

    If it cannot be loaded the object is reported unscanned rather than passed
    as clean.
    """

    def run(obj: ScanObject, ctx: WalkContext) -> Iterator[Child]:
        extract = extractor_for(kind)
        if extract is None:
            ctx.unscanned(obj.part, f"{kind}: no extractor available")
            return iter(())
        return extract(obj, ctx)

    run.__name__ = f"extract_{kind}"
    return run


#: every kind the engine can open, and its extractor
EXTRACTORS: dict[FileKind, Extractor] = {kind: _deferred(kind) for kind in _TARGETS}
