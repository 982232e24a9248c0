"""ClamAV target types and container types, mapped onto our file kinds.

A body signature names a *target type* (``0`` any file, ``1`` PE, ``3`` HTML,
``4`` mail, ...).  :func:`check_target` validates the number at load time (the
types we cannot tell apart raise :class:`UnsupportedSignature`, so they are
counted, not silently dropped) and :func:`targets_for` says which targets
apply to a buffer of a given kind in a given normalised view.  The ``.ldb``
``Container:`` and ``Intermediates:`` conditions name ClamAV ``CL_TYPE_*``
types; :func:`container_kind` maps them to the container labels the walker
uses (``"zip"``, ``"mail"``...).

SECURITY: pure tables; no input is trusted beyond a dictionary lookup.
"""

from __future__ import annotations

from mailwarden.engine.filetype import FileKind
from mailwarden.engine.signatures.offsets import MalformedSignature, UnsupportedSignature

ANY_TARGET = 0
HTML_TARGET = 3
TEXT_TARGET = 7

#: target type -> the file kind it applies to (raw view unless normalised)
TARGET_KINDS: dict[int, FileKind] = {
    1: FileKind.PE,
    2: FileKind.OLE2,
    3: FileKind.HTML,
    4: FileKind.MAIL,
    5: FileKind.GRAPHICS,
    6: FileKind.ELF,
    7: FileKind.TEXT,
    9: FileKind.MACHO,
    10: FileKind.PDF,
    11: FileKind.FLASH,
    12: FileKind.JAVA,
}
_KIND_TARGET = {kind: target for target, kind in TARGET_KINDS.items()}
#: ClamAV types 8 (unused), 13 (internal) and 14 (other) name nothing we sniff
_MAX_TARGET = 14

_CL_TYPES: dict[str, str] = {
    "CL_TYPE_ZIP": "zip",
    "CL_TYPE_ZIPSFX": "zip",
    "CL_TYPE_RAR": "rar",
    "CL_TYPE_RARSFX": "rar",
    "CL_TYPE_7Z": "7z",
    "CL_TYPE_7ZSFX": "7z",
    "CL_TYPE_GZ": "gzip",
    "CL_TYPE_BZ": "bzip2",
    "CL_TYPE_XZ": "xz",
    "CL_TYPE_POSIX_TAR": "tar",
    "CL_TYPE_OLD_TAR": "tar",
    "CL_TYPE_MSCAB": "cab",
    "CL_TYPE_ISO9660": "iso",
    "CL_TYPE_MAIL": "mail",
    "CL_TYPE_PDF": "pdf",
    "CL_TYPE_MSOLE2": "ole2",
    "CL_TYPE_RTF": "rtf",
    "CL_TYPE_TNEF": "tnef",
    "CL_TYPE_HTML": "html",
}


def check_target(text: str) -> int:
    """Validate a target field; unsupported types raise UnsupportedSignature."""
    if not text.isdigit():
        raise MalformedSignature(f"bad target type {text!r}")
    target = int(text)
    if target > _MAX_TARGET:
        raise MalformedSignature(f"unknown target type {target}")
    if target != ANY_TARGET and target not in TARGET_KINDS:
        raise UnsupportedSignature(f"target type {target}")
    return target


def targets_for(kind: FileKind, view: str) -> frozenset[int]:
    """Targets whose signatures apply to a buffer of ``kind`` in ``view``."""
    if view == "html":
        return frozenset((ANY_TARGET, HTML_TARGET))
    if view == "text":
        return frozenset((ANY_TARGET, TEXT_TARGET))
    target = _KIND_TARGET.get(kind)
    if target is None or target in (HTML_TARGET, TEXT_TARGET):
        return frozenset((ANY_TARGET,))
    return frozenset((ANY_TARGET, target))


def container_kind(cl_type: str) -> str | None:
    """Our container label for a ClamAV type; None for CL_TYPE_ANY (no container)."""
    if cl_type == "CL_TYPE_ANY":
        return None
    try:
        return _CL_TYPES[cl_type]
    except KeyError:
        raise UnsupportedSignature(f"container type {cl_type}") from None
