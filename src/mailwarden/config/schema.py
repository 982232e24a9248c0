"""Every configuration key, its type, its default and its documentation, in one place.

The loader (``config/load.py``) validates files against this table, ``mailwarden
config defaults`` prints it as a commented TOML file, and docs/configuration.md
is that output.  Adding a key means adding one :class:`Option` here; nothing else
carries a default.

SECURITY: defaults are the safe ones (loopback only, defer on failure); this
module only describes, it reads nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Option:
    key: str
    default: Any
    kind: str  # "bool" | "int" | "float" | "str" | "list[str]" | "size"
    doc: str
    minimum: float | None = None
    choices: tuple[str, ...] | None = None
    check: Callable[[Any], str | None] | None = None


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    doc: str
    options: tuple[Option, ...]

    def option(self, key: str) -> Option | None:
        for opt in self.options:
            if opt.key == key:
                return opt
        return None


MB = 1_000_000
MiB = 1024 * 1024

SECTIONS: tuple[Section, ...] = (
    Section(
        "engine",
        "The scanning engine: which signatures it loads and where it caches them.",
        (
            Option(
                "databases",
                ["/var/lib/clamav"],
                "list[str]",
                "Signature files or folders: ClamAV databases (.hdb .hsb .mdb .msb .ndb .ldb "
                ".fp .sfp .ign2 .cvd .cld .cud) and YARA rules (.yar .yara). A folder that "
                "does not exist is skipped with a note, so freshclam's folder is used when "
                "present.",
            ),
            Option(
                "bundled",
                True,
                "bool",
                "Load the bundled signature set (EICAR and test signatures) as well.",
            ),
            Option(
                "cache_dir",
                "/var/cache/mailwarden",
                "str",
                "Where the compiled signature database is cached, keyed by the signature "
                "files' digest. Empty string: no cache.",
            ),
            Option(
                "matcher",
                "auto",
                "str",
                "Body-pattern matcher: hyperscan, aho (pure fallback) or auto.",
                choices=("auto", "hyperscan", "aho"),
            ),
            Option(
                "workers",
                0,
                "int",
                "Worker processes for bulk scans; 0 means one per CPU core.",
                minimum=0,
            ),
        ),
    ),
    Section(
        "limits",
        "Per-message limits. Going over any of them makes the message 'unscanned' with the "
        "limit named, never 'clean'.",
        (
            Option("max_depth", 16, "int", "Nesting depth of messages and archives.", minimum=1),
            Option("max_files", 10_000, "int", "Parts and archive members per message.", minimum=1),
            Option(
                "max_total_bytes",
                500 * MB,
                "size",
                "Bytes expanded from one message, all parts and members together.",
                minimum=1,
            ),
            Option(
                "max_ratio",
                200.0,
                "float",
                "Largest expansion ratio of one archive member (judged past 1 MiB).",
                minimum=1,
            ),
            Option("max_seconds", 60.0, "float", "Time to scan one message.", minimum=0.001),
            Option(
                "spool_threshold",
                16 * MiB,
                "size",
                "Objects larger than this are held in an unlinked temporary file, not memory.",
                minimum=4096,
            ),
            Option(
                "max_header_bytes",
                1 * MiB,
                "size",
                "Header block size beyond which a part's headers are not parsed (the raw "
                "bytes are still matched).",
                minimum=1024,
            ),
            Option(
                "max_mime_parts",
                20_000,
                "int",
                "MIME parts read from one message; the rest is unscanned.",
                minimum=1,
            ),
        ),
    ),
    Section(
        "heuristics",
        "Heuristic checks. Their findings make a message 'suspicious', with names of the "
        "form Heuristics.*.",
        (
            Option("executables", True, "bool", "Executables (PE, ELF, Mach-O) by content."),
            Option(
                "scripts", True, "bool", "Scripts and shortcuts by name (.js .vbs .hta .lnk ...)."
            ),
            Option("disk_images", True, "bool", "Disk images (.iso .img .vhd) by name or content."),
            Option(
                "double_extension",
                True,
                "bool",
                "Double extensions (invoice.pdf.exe, padding with spaces) and right-to-left "
                "override characters in names.",
            ),
            Option(
                "type_mismatch",
                True,
                "bool",
                "Content that contradicts the name (a PE named .pdf).",
            ),
            Option("executables_in_archives", True, "bool", "Executables inside archives."),
            Option("office_macros", True, "bool", "Office documents with VBA or XLM macros."),
            Option(
                "encrypted_archives",
                False,
                "bool",
                "Also report encrypted archives as a finding (they are 'unscanned' anyway).",
            ),
        ),
    ),
)

SECTION_BY_NAME: dict[str, Section] = {s.name: s for s in SECTIONS}
