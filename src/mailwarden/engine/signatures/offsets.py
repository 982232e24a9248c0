"""ClamAV body-signature offsets: parse them and turn them into start windows.

A ``.ndb`` signature or an ``.ldb`` subsignature may say where its match must
start: ``*`` (anywhere), ``n`` (exactly at byte n), ``EOF-n`` (n bytes before
the end), each optionally floating as ``OFFSET,MAXSHIFT`` (any start from
OFFSET to OFFSET+MAXSHIFT).  :func:`parse_offset` reads the text form and
:meth:`Offset.window` gives, for a payload of a given size, the inclusive range
of allowed start positions.

Executable-relative offsets (``EP+n``, ``Sx+n``, ``SEx``, ``SL+n``) and
version-information offsets (``VI``) need a PE/ELF/Mach-O loader that this
engine does not have; :func:`parse_offset` raises :class:`UnsupportedSignature`
for them so the loader can skip and count the signature.

SECURITY: parses database text only; numbers are bounded so a hostile database
cannot make a window computation allocate or loop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Largest offset or shift accepted; ClamAV keeps them in 32 bits.
MAX_OFFSET = 0xFFFFFFFF

ANY = 0
ABSOLUTE = 1
FROM_EOF = 2

_ABS = re.compile(r"(\d+)(?:,(\d+))?")
_EOF = re.compile(r"EOF-(\d+)(?:,(\d+))?")
_EXEC = re.compile(r"(?:EP[+-]\d+|S\d+\+\d+|SE\d+|SL\+\d+|VI)(?:,\d+)?")


class UnsupportedSignature(Exception):
    """A well-formed signature that uses a feature we do not evaluate.

    ``reason`` is the key under which the loader counts it.  (A skip reason,
    not a failure: hence no ``Error`` suffix.)
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MalformedSignature(ValueError):
    """The signature text is not valid; the loader adds file and line."""


@dataclass(frozen=True, slots=True)
class Offset:
    """A parsed offset: ``kind`` is :data:`ANY`, :data:`ABSOLUTE` or :data:`FROM_EOF`."""

    kind: int = ANY
    value: int = 0
    shift: int = 0

    @property
    def anywhere(self) -> bool:
        return self.kind == ANY

    def window(self, size: int) -> tuple[int, int] | None:
        """Inclusive (first, last) allowed start for a payload of ``size`` bytes.

        ``None`` means no position can satisfy the offset (it lies outside the
        payload); :data:`ANY` gives the whole payload.
        """
        if self.kind == ANY:
            return (0, size)
        start = self.value if self.kind == ABSOLUTE else size - self.value
        if start < 0 or start > size:
            return None
        return (start, min(start + self.shift, size))

    def encode(self) -> tuple[int, int, int]:
        return (self.kind, self.value, self.shift)

    def __str__(self) -> str:
        if self.kind == ANY:
            return "*"
        base = str(self.value) if self.kind == ABSOLUTE else f"EOF-{self.value}"
        return f"{base},{self.shift}" if self.shift else base


ANYWHERE = Offset()


def _bounded(text: str | None) -> int:
    if text is None:
        return 0
    value = int(text)
    if value > MAX_OFFSET:
        raise MalformedSignature(f"offset {value} out of range")
    return value


def parse_offset(text: str) -> Offset:
    """Parse a ClamAV offset field; see the module docstring for the forms."""
    text = text.strip()
    if text == "*":
        return ANYWHERE
    m = _ABS.fullmatch(text)
    if m:
        return Offset(ABSOLUTE, _bounded(m.group(1)), _bounded(m.group(2)))
    m = _EOF.fullmatch(text)
    if m:
        return Offset(FROM_EOF, _bounded(m.group(1)), _bounded(m.group(2)))
    if _EXEC.fullmatch(text):
        return _unsupported_exec(text)
    raise MalformedSignature(f"bad offset {text!r}")


def _unsupported_exec(text: str) -> Offset:
    reason = "offset VI" if text.startswith("VI") else "offset EP/section-relative"
    raise UnsupportedSignature(reason)
