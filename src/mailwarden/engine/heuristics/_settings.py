"""Heuristic switches and the hit type that :func:`check` returns.

Used by the engine configuration (one ``[heuristics]`` table whose keys are the
fields below) and by the walker, which turns each :class:`HeuristicHit` into a
``suspicious`` finding with engine ``heuristics``.

SECURITY: plain data; nothing here reads input.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HeuristicSettings:
    """Which heuristics run; each field switches one family of names."""

    #: PE, ELF and Mach-O content (``Heuristics.Executable.PE/ELF/MachO``) and
    #: executable file names such as ``.exe`` or ``.dll`` (``Heuristics.Executable.Name``)
    executables: bool = True
    #: script, installer and shortcut names (``.js .vbs .hta .ps1 .bat .msi .jar .lnk``...)
    #: and shortcut content (``Heuristics.Script.<EXT>``)
    scripts: bool = True
    #: ``.iso .img .vhd .vhdx .dmg`` by name, and ISO/UDF/VHD/VHDX/DMG content
    #: (``Heuristics.DiskImage``)
    disk_images: bool = True
    #: a dangerous extension behind a decoy one (``invoice.pdf.exe``), behind
    #: whitespace padding, or a right-to-left override in the name
    #: (``Heuristics.DoubleExtension``, ``Heuristics.RTLO``)
    double_extension: bool = True
    #: executable or shortcut content under a harmless-looking name such as
    #: ``.pdf`` or ``.jpg`` (``Heuristics.TypeMismatch``)
    type_mismatch: bool = True
    #: an executable (by content or name) inside an archive (``Heuristics.Archive.Executable``)
    executables_in_archives: bool = True
    #: VBA or Excel 4 (XLM) macros in an OLE2 document, including the
    #: ``vbaProject.bin`` member of OOXML files (``Heuristics.OLE2.Macro``)
    office_macros: bool = True
    #: password-protected ZIP, 7z or RAR archives (``Heuristics.Encrypted.Archive``);
    #: off by default because the walker already reports them as unscanned
    encrypted_archives: bool = False


@dataclass(frozen=True, slots=True)
class HeuristicHit:
    """One heuristic that fired, by its stable name (``Heuristics.DoubleExtension``)."""

    name: str
