"""The heuristic pass: one object in, at most one named hit out.

The walker calls :func:`check` for every object it visits, after sniffing its
kind.  Every heuristic applies to every object wherever it sits; the root of a
mail scan is the message itself, which none of them flags.

Precedence: the first heuristic in this list that is enabled and applies wins,
so a single object yields at most one hit, the most specific one:

1. ``Heuristics.RTLO``: a right-to-left override in the name
2. ``Heuristics.DoubleExtension``: a dangerous extension behind a decoy one or padding
3. ``Heuristics.TypeMismatch``: executable or shortcut content under a decoy name
4. ``Heuristics.Archive.Executable``: an executable, by content or name, in an archive
5. ``Heuristics.Executable.PE`` / ``.ELF`` / ``.MachO``: executable content
6. ``Heuristics.Script.LNK`` by shortcut content, ``Heuristics.DiskImage`` by image content
7. ``Heuristics.Executable.Name``, ``Heuristics.Script.<EXT>``, ``Heuristics.DiskImage`` by name
8. ``Heuristics.Encrypted.Archive`` (off by default)
9. ``Heuristics.OLE2.Macro``: last because it is the only costly probe

Deception comes first because it shows intent, and content before names
because content cannot lie about what will run.  Cost: a name and kind lookup
for ordinary parts; OLE2 documents also pay for olevba.

SECURITY: reads only the object's name, declared type and a few bytes of its
data (plus the whole of OLE2 documents, through olevba); trusts none of it and
needs no privileges.
"""

from __future__ import annotations

from mailwarden.engine.filetype import ARCHIVE_KINDS, EXECUTABLE_KINDS, FileKind
from mailwarden.engine.heuristics._content import is_disk_image, is_encrypted_archive
from mailwarden.engine.heuristics._macros import has_macros
from mailwarden.engine.heuristics._names import NameFacts, read_name
from mailwarden.engine.heuristics._settings import HeuristicHit, HeuristicSettings
from mailwarden.engine.heuristics._tables import (
    DANGEROUS_EXTENSIONS,
    DECOY_EXTENSIONS,
    DISK_IMAGE_EXTENSIONS,
    EXECUTABLE_EXTENSIONS,
    SCRIPT_EXTENSIONS,
)
from mailwarden.engine.objects import ScanObject

RTLO = HeuristicHit("Heuristics.RTLO")
DOUBLE_EXTENSION = HeuristicHit("Heuristics.DoubleExtension")
TYPE_MISMATCH = HeuristicHit("Heuristics.TypeMismatch")
ARCHIVE_EXECUTABLE = HeuristicHit("Heuristics.Archive.Executable")
EXECUTABLE_CONTENT = {
    FileKind.PE: HeuristicHit("Heuristics.Executable.PE"),
    FileKind.ELF: HeuristicHit("Heuristics.Executable.ELF"),
    FileKind.MACHO: HeuristicHit("Heuristics.Executable.MachO"),
}
EXECUTABLE_NAME = HeuristicHit("Heuristics.Executable.Name")
SCRIPTS = {
    ext: HeuristicHit(f"Heuristics.Script.{ext.upper()}") for ext in sorted(SCRIPT_EXTENSIONS)
}
DISK_IMAGE = HeuristicHit("Heuristics.DiskImage")
ENCRYPTED_ARCHIVE = HeuristicHit("Heuristics.Encrypted.Archive")
OLE2_MACRO = HeuristicHit("Heuristics.OLE2.Macro")

#: every name :func:`check` can return, in precedence order
HEURISTIC_NAMES: tuple[str, ...] = (
    RTLO.name,
    DOUBLE_EXTENSION.name,
    TYPE_MISMATCH.name,
    ARCHIVE_EXECUTABLE.name,
    *(hit.name for hit in EXECUTABLE_CONTENT.values()),
    EXECUTABLE_NAME.name,
    *(hit.name for hit in SCRIPTS.values()),
    DISK_IMAGE.name,
    ENCRYPTED_ARCHIVE.name,
    OLE2_MACRO.name,
)

# enum members bound once: attribute lookups on an Enum class are slow in the hot path
_LNK, _OLE2 = FileKind.LNK, FileKind.OLE2
_ARCHIVE_PARENTS = frozenset(str(kind) for kind in ARCHIVE_KINDS)
_RUNNABLE_KINDS = EXECUTABLE_KINDS | {FileKind.LNK}
#: kinds some content probe looks at; anything else without a name is skipped at once
_PROBED_KINDS = _RUNNABLE_KINDS | {
    FileKind.BINARY,
    FileKind.ISO,
    FileKind.ZIP,
    FileKind.SEVENZ,
    FileKind.RAR,
    FileKind.OLE2,
}


def _deception(facts: NameFacts, kind: FileKind, s: HeuristicSettings) -> HeuristicHit | None:
    if s.double_extension:
        if facts.rtlo:
            return RTLO
        if facts.ext in DANGEROUS_EXTENSIONS and (
            facts.padded or facts.prev_ext in DECOY_EXTENSIONS
        ):
            return DOUBLE_EXTENSION
    if s.type_mismatch and kind in _RUNNABLE_KINDS and facts.ext in DECOY_EXTENSIONS:
        return TYPE_MISMATCH
    return None


def _by_content(
    obj: ScanObject, kind: FileKind, ext: str, s: HeuristicSettings
) -> HeuristicHit | None:
    executable = kind in EXECUTABLE_KINDS
    if (
        s.executables_in_archives
        and obj.parent_kind in _ARCHIVE_PARENTS
        and (executable or ext in EXECUTABLE_EXTENSIONS)
    ):
        return ARCHIVE_EXECUTABLE
    if executable:
        return EXECUTABLE_CONTENT[kind] if s.executables else None
    if kind is _LNK:
        return SCRIPTS["lnk"] if s.scripts else None
    if s.disk_images and is_disk_image(obj.data, kind):
        return DISK_IMAGE
    return None


def _by_name(ext: str, s: HeuristicSettings) -> HeuristicHit | None:
    if s.executables and ext in EXECUTABLE_EXTENSIONS:
        return EXECUTABLE_NAME
    if s.scripts and ext in SCRIPT_EXTENSIONS:
        return SCRIPTS[ext]
    if s.disk_images and ext in DISK_IMAGE_EXTENSIONS:
        return DISK_IMAGE
    return None


def _first_hit(obj: ScanObject, kind: FileKind, s: HeuristicSettings) -> HeuristicHit | None:
    facts = read_name(obj.name)
    ext = facts.ext if facts else ""
    hit = _deception(facts, kind, s) if facts else None
    hit = hit or _by_content(obj, kind, ext, s) or _by_name(ext, s)
    if hit:
        return hit
    if s.encrypted_archives and is_encrypted_archive(obj.data, kind):
        return ENCRYPTED_ARCHIVE
    if s.office_macros and kind is _OLE2 and has_macros(obj.data, obj.name or "document"):
        return OLE2_MACRO
    return None


def check(obj: ScanObject, kind: FileKind, settings: HeuristicSettings) -> list[HeuristicHit]:
    """The heuristic hit for ``obj`` (whose content is ``kind``), or an empty list."""
    if not obj.name and kind not in _PROBED_KINDS:
        return []
    hit = _first_hit(obj, kind, settings)
    return [hit] if hit else []
