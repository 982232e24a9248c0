"""Reading a hostile file name the way the recipient's desktop will.

Used by ``_check``: :func:`read_name` turns ``ScanObject.name`` into the few
facts the name heuristics need (final extension, the extension before it,
padding, a right-to-left override).  It reproduces what Windows and common
mail clients do to a name before they decide what it is: keep only the last
path element, stop at a NUL, drop control and invisible format characters,
strip the trailing dots and spaces that Windows ignores, and fold case.

SECURITY: names come from the sender and are untrusted labels.  Work is bounded
by :data:`_MAX_NAME` characters, whatever the name's length; nothing here
touches the file system.
"""

from __future__ import annotations

import unicodedata
from typing import NamedTuple

#: only the tail of a longer name matters for its extension; the padding trick
#: needs far fewer characters than this to push the extension out of view
_MAX_NAME = 1024
_MAX_EXT = 20
_RLO = "\u202e"
#: what Windows and mail clients drop from the end of a name: every Unicode
#: space (the highest is U+3000) and dots
_TRAILING_JUNK = "".join(chr(c) for c in range(0x3001) if chr(c).isspace()) + "."
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf"})


class NameFacts(NamedTuple):
    """What the name heuristics look at; extensions are lower case without the dot."""

    ext: str
    #: the normalised name before the final dot
    stem: str
    #: the raw name contains U+202E RIGHT-TO-LEFT OVERRIDE
    rtlo: bool

    @property
    def padded(self) -> bool:
        """Whitespace fills the space before the final extension."""
        return len(self.stem) >= 2 and self.stem[-2:].isspace()

    @property
    def prev_ext(self) -> str:
        """The extension before ``ext`` (``pdf`` in ``invoice.pdf.exe``), or ""."""
        return _split_ext(self.stem.rstrip(_TRAILING_JUNK))[1]


def _visible(name: str) -> str:
    if name.isascii() and name.isprintable():
        return name
    return "".join(ch for ch in name if unicodedata.category(ch) not in _HIDDEN_CATEGORIES)


def _split_ext(name: str) -> tuple[str, str]:
    stem, dot, ext = name.rpartition(".")
    if not dot or not ext or len(ext) > _MAX_EXT or ext.split(maxsplit=1) != [ext]:
        return name, ""
    return stem, ext


def read_name(name: str | None) -> NameFacts | None:
    """Facts about ``name``, or None when there is no usable name."""
    if not name:
        return None
    rtlo = _RLO in name
    if "\x00" in name:
        # C string handling in clients ends the name at the first NUL
        name = name.partition("\x00")[0]
    if "/" in name or "\\" in name:
        name = name[max(name.rfind("/"), name.rfind("\\")) + 1 :]
    if len(name) > _MAX_NAME:
        name = name[-_MAX_NAME:]
    stem, ext = _split_ext(_visible(name).rstrip(_TRAILING_JUNK).lower())
    if not ext and not rtlo:
        return None
    return NameFacts(ext, stem, rtlo)
