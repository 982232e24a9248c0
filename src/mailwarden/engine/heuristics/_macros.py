"""Office macro detection for OLE2 documents, delegated to oletools' olevba.

Used by ``_check`` for objects whose content is OLE2: Word, Excel and
PowerPoint 97-2003 files, and the ``vbaProject.bin`` member of an OOXML
document (``.docm``, ``.xlsm``...), which the walker extracts from the zip as an
OLE2 object of its own.  :func:`has_macros` answers whether the file carries a
VBA project or, for Excel, an Excel 4 (XLM) macro sheet.

olevba is imported on first use: it is slow to import and only OLE2 content
needs it.

SECURITY: olevba parses hostile input, so every exception it raises counts as
"no macros found" (a file too broken for olevba is too broken for Office to
run); it reads the data in memory, writes nothing and runs no macro code.
"""

from __future__ import annotations

import warnings
from typing import Any

from mailwarden.engine.objects import Buffer


def _parser(data: Buffer, label: str) -> Any:
    with warnings.catch_warnings():
        # olevba's grammar uses pyparsing names that newer pyparsing deprecates
        warnings.simplefilter("ignore", DeprecationWarning)
        from oletools import olevba  # heavy import, only OLE2 needs it

    # olevba wants bytes; OLE2 documents are small next to the walk's byte budget
    return olevba.VBA_Parser(label, data=bytes(data), relaxed=True)


def has_macros(data: Buffer, label: str = "document") -> bool:
    """True when olevba finds VBA or XLM macros in the OLE2 file ``data``."""
    try:
        parser = _parser(data, label)
        try:
            return bool(parser.detect_vba_macros() or parser.detect_xlm_macros())
        finally:
            parser.close()
    except Exception:  # olevba raises anything on hostile files
        return False
