"""Line parsers for ClamAV database files (``.hdb .hsb .mdb .msb .ndb .ldb .fp .sfp .ign2``).

The loader hands each file's text to :meth:`DatabaseParser.parse` with the
file's extension; the parser adds what it understands to a
:class:`~mailwarden.engine.signatures.tables.TableBuilder` and counts, in
``counts`` (per kind) and ``skipped`` (per reason), what it loaded and what
it could not support.  Nothing is dropped silently: a signature is loaded,
counted as skipped with a reason, or the file is rejected with a
:class:`~mailwarden.errors.SignatureError` naming file and line.

Formats (ClamAV's documentation):

* ``.hdb``/``.fp``: ``MD5:Size:Name``; ``.hsb``/``.sfp``: the same with a
  SHA1 or SHA256 (told apart by length); ``Size`` may be ``*``.
* ``.mdb``/``.msb``: ``SectionSize:Hash:Name`` for one PE section.
* ``.ndb``: ``Name:Target:Offset:HexSig[:MinFL[:MaxFL]]``.
* ``.ldb``: ``Name;TargetDescriptionBlock;Expression;Subsig0;...``.
* ``.ign2``: ``Name`` or ``Name:MD5-of-the-database-line``.

Plain ``.hdb``/``.hsb`` lines (three fields, nothing to ignore) are read in
bulk by ``hashlines`` when a whole file is given (:meth:`DatabaseParser.parse_bytes`),
since they are the millions; everything else goes through the per-field
checks above.

SECURITY: database files are trusted to be what the administrator installed
but are still parsed defensively: every field is validated, and the
resulting patterns are bounded (see ``hexsig``).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, BinaryIO

from mailwarden.engine.signatures.hashindex import WILDCARD_SIZE
from mailwarden.engine.signatures.hexsig import CompiledPattern, compile_hexsig
from mailwarden.engine.signatures.offsets import (
    ANYWHERE,
    MalformedSignature,
    Offset,
    UnsupportedSignature,
    parse_offset,
)
from mailwarden.engine.signatures.tables import (
    DIGEST_LENGTHS,
    FILE,
    SECTION,
    LogicalSig,
    TableBuilder,
)
from mailwarden.engine.signatures.targets import check_target, container_kind
from mailwarden.errors import SignatureError

if TYPE_CHECKING:
    from mailwarden.engine.signatures.precompile import Precompiled

#: The functionality level we claim: signatures outside their Engine/FLEVEL
#: range are skipped, as ClamAV of this level would skip them (ClamAV 1.4).
FLEVEL = 200
#: ClamAV allows up to 64 subsignatures in one logical signature.
MAX_SUBSIGS = 64

HASH_EXTS = frozenset({"hdb", "hsb", "mdb", "msb"})
ALLOW_EXTS = frozenset({"fp", "sfp"})
SUPPORTED_EXTS = HASH_EXTS | ALLOW_EXTS | frozenset({"ndb", "ldb", "ign2"})

_BYTE_COMPARE = re.compile(r"\d+\(")
_RANGE = re.compile(r"(\d+)(?:-(\d*))?")


class DatabaseParser:
    """Parses database text into a TableBuilder; see the module docstring."""

    def __init__(self, builder: TableBuilder) -> None:
        self.builder = builder
        self.counts: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        #: name -> md5 of the line to ignore ("" ignores every line of that name)
        self.ignore: dict[str, set[str]] = {}
        #: body patterns compiled ahead by a second process (see ``precompile``)
        self.precompiled: Precompiled | None = None

    # -- entry point ----------------------------------------------------------

    def parse(self, text: str, ext: str, *, file: str, official: bool) -> None:
        self.parse_lines(text.split("\n"), ext, file=file, official=official)

    def parse_bytes(self, data: bytes, ext: str, *, file: str, official: bool) -> None:
        """Parse one whole file's bytes; plain hash lines are read in bulk."""
        self.parse_chunks(chunks(data), ext, file=file, official=official)

    def parse_chunks(self, pieces: Iterable[bytes], ext: str, *, file: str, official: bool) -> None:
        """Parse one file given as pieces that each end with a line end (the last may not)."""
        bulk = ext in ("hdb", "hsb") and not self.ignore
        line = 1
        for piece in pieces:
            if bulk:
                from mailwarden.engine.signatures.hashlines import plain_lines

                found = plain_lines(piece, line)
                for dlen, block in found.blocks.items():
                    self.builder.hash_builder(FILE, dlen, official).add_block(block)
                    self.counts[ext] += len(block)
                self._parse_numbered(found.others, ext, file, official)
            else:
                text = piece.decode("utf-8", "surrogateescape").split("\n")
                if piece.endswith(b"\n"):
                    text.pop()
                self._parse_numbered(enumerate(text, line), ext, file, official)
            line += piece.count(b"\n")

    def parse_lines(self, lines: Iterable[str], ext: str, *, file: str, official: bool) -> None:
        """Parse one file given as lines (with or without their line ends)."""
        self._parse_numbered(enumerate(lines, 1), ext, file, official)

    def _parse_numbered(
        self, lines: Iterable[tuple[int, str]], ext: str, file: str, official: bool
    ) -> None:
        handler = {
            "hdb": self._hash,
            "hsb": self._hash,
            "fp": self._allow,
            "sfp": self._allow,
            "mdb": self._hash,
            "msb": self._hash,
            "ndb": self._ndb,
            "ldb": self._ldb,
            "ign2": self._ign2,
        }[ext]
        for lineno, raw in lines:
            line = raw.strip("\r\n\t ")
            if not line or line.startswith("#"):
                continue
            try:
                handler(line, ext, official)
            except UnsupportedSignature as exc:
                self.skipped[exc.reason] += 1
            except (MalformedSignature, ValueError) as exc:
                raise SignatureError(str(exc), file=file, line=lineno) from None

    def _ignored(self, name: str, line: str) -> bool:
        md5s = self.ignore.get(name)
        if md5s is None:
            return False
        if "" in md5s or hashlib.md5(line.encode(), usedforsecurity=False).hexdigest() in md5s:
            self.skipped["ignored by .ign2"] += 1
            return True
        return False

    # -- hash formats ---------------------------------------------------------

    @staticmethod
    def _digest(text: str) -> bytes:
        digest = bytes.fromhex(text)
        if len(digest) not in DIGEST_LENGTHS:
            raise MalformedSignature(f"hash of {len(digest)} bytes is not MD5, SHA1 or SHA256")
        return digest

    @staticmethod
    def _size(text: str) -> int | None:
        if text == "*":
            return None
        if not text.isdigit():
            raise MalformedSignature(f"bad size {text!r}")
        size = int(text)
        if size >= WILDCARD_SIZE:  # all ones stands for "any size" in the index
            raise MalformedSignature(f"size {text} is too large")
        return size

    def _fields(self, line: str, ext: str) -> list[str]:
        parts = line.split(":")
        if len(parts) < 3:
            raise MalformedSignature(f"expected at least 3 fields in a .{ext} line")
        if len(parts) > 3:
            self._flevel(parts[3], parts[4] if len(parts) > 4 else "")
        return parts

    def _hash(self, line: str, ext: str, official: bool) -> None:
        parts = self._fields(line, ext)
        if ext in ("mdb", "msb"):
            domain, size, digest = SECTION, self._size(parts[0]), self._digest(parts[1])
        else:
            domain, digest, size = FILE, self._digest(parts[0]), self._size(parts[1])
        name = parts[2]
        if not self._ignored(name, line):
            self.builder.hash(domain, digest, size, name, official)
            self.counts[ext] += 1

    def _allow(self, line: str, ext: str, official: bool) -> None:
        parts = self._fields(line, ext)
        self.builder.allow(self._digest(parts[0]), self._size(parts[1]))
        self.counts[ext] += 1

    def _ign2(self, line: str, ext: str, official: bool) -> None:
        name, _, md5 = line.partition(":")
        md5 = md5.strip().lower()
        if md5 and not re.fullmatch(r"[0-9a-f]{32}", md5):
            raise MalformedSignature(f"bad MD5 {md5!r} in .ign2 line")
        self.ignore.setdefault(name.strip(), set()).add(md5)
        self.counts[ext] += 1

    # -- body formats ---------------------------------------------------------

    @staticmethod
    def _flevel(low: str, high: str) -> None:
        for text in (low, high):
            if text and not text.isdigit():
                raise MalformedSignature(f"bad functionality level {text!r}")
        if (low and int(low) > FLEVEL) or (high and int(high) < FLEVEL):
            raise UnsupportedSignature("functionality level")

    def _ndb(self, line: str, ext: str, official: bool) -> None:
        parts = line.split(":")
        if len(parts) < 4 or len(parts) > 6:
            raise MalformedSignature("expected Name:Target:Offset:HexSig[:MinFL[:MaxFL]]")
        name, target_text, offset_text, hexsig = parts[:4]
        if offset_text.startswith("$") or hexsig.startswith("$"):
            raise UnsupportedSignature("macro signature")
        target = check_target(target_text)
        if len(parts) > 4:
            self._flevel(parts[4], parts[5] if len(parts) > 5 else "")
        offset = parse_offset(offset_text)
        compiled = self._compile(hexsig)
        if self._ignored(name, line):
            return
        pid = self.builder.pattern(compiled, offset, target)
        self.builder.add_body(name, official, pid)
        self.counts[ext] += 1

    def _ldb(self, line: str, ext: str, official: bool) -> None:
        parts = line.split(";")
        if len(parts) < 4:
            raise MalformedSignature("expected Name;TargetDescription;Expression;Subsig0;...")
        name, tdb, expression, subsigs = parts[0], parts[1], parts[2], parts[3:]
        if len(subsigs) > MAX_SUBSIGS:
            raise MalformedSignature(f"more than {MAX_SUBSIGS} subsignatures")
        target, filesize, container = self._tdb(tdb)
        compiled = [self._subsig(sub) for sub in subsigs]
        # parse the expression before any pattern is registered: a bad line adds nothing
        LogicalSig(name, official, target, expression, tuple(range(len(compiled))))
        if self._ignored(name, line):
            return
        pids = tuple(self.builder.pattern(c, off, target) for c, off in compiled)
        self.builder.logical(
            LogicalSig(name, official, target, expression, pids, filesize, container)
        )
        self.counts[ext] += 1

    def _subsig(self, text: str) -> tuple[CompiledPattern, Offset]:
        """``[Offset:]HexSig[::Modifiers]``; PCRE, byte-compare and macro forms are skipped."""
        hexsig, modifiers, offset_text = split_subsig(text)
        offset = ANYWHERE if offset_text is None else parse_offset(offset_text)
        return self._compile(hexsig, modifiers), offset

    def _compile(self, text: str, modifiers: str = "") -> CompiledPattern:
        """:func:`compile_hexsig`, taken from ``precompiled`` when it has the answer."""
        if self.precompiled is not None:
            found = self.precompiled.take(text, modifiers)
            if found is not None:
                return found
        return compile_hexsig(text, modifiers)

    def _tdb(self, text: str) -> tuple[int, tuple[int, int] | None, str | None]:
        target: int | None = None
        filesize: tuple[int, int] | None = None
        container: str | None = None
        for item in text.split(","):
            key, sep, value = item.partition(":")
            if not sep:
                raise MalformedSignature(f"bad target description item {item!r}")
            if key == "Target":
                target = check_target(value)
            elif key == "Engine":
                low, _, high = value.partition("-")
                self._flevel(low, high)
            elif key == "FileSize":
                filesize = _range(value)
            elif key == "Container":
                container = container_kind(value) or ""
            elif key == "Intermediates":
                layers = value.split(">")
                if len(layers) > 1:
                    raise UnsupportedSignature("Intermediates with several layers")
                if layers[0] != "CL_TYPE_ANY":
                    container = container_kind(layers[0])
            elif key in ("EntryPoint", "NumberOfSections"):
                raise UnsupportedSignature(f"PE condition {key}")
            elif key in ("IconGroup1", "IconGroup2"):
                raise UnsupportedSignature("icon group")
            elif key == "HandlerType":
                raise UnsupportedSignature("handler type")
            else:
                raise MalformedSignature(f"unknown target description keyword {key!r}")
        if target is None:
            raise MalformedSignature("target description has no Target")
        return target, filesize, container


#: Bytes of a file handled at a time: the arrays of one piece take a few times its size.
CHUNK = 8 << 20


def chunks(data: bytes, size: int = CHUNK) -> Iterator[bytes]:
    """``data`` cut after a line end about every ``size`` bytes."""
    start = 0
    while start < len(data):
        cut = data.find(b"\n", start + size - 1)
        end = len(data) if cut < 0 else cut + 1
        yield data[start:end]
        start = end


def file_chunks(fh: BinaryIO, size: int = CHUNK) -> Iterator[bytes]:
    """A file's bytes cut after a line end about every ``size`` bytes."""
    rest = b""
    while True:
        block = fh.read(size)
        if not block:
            break
        block = rest + block
        cut = block.rfind(b"\n") + 1
        if not cut:
            rest = block
            continue
        rest = block[cut:]
        yield block[:cut]
    if rest:
        yield rest


def split_subsig(text: str) -> tuple[str, str, str | None]:
    """An ``.ldb`` subsignature as (hex pattern, modifiers, offset text or None).

    Raises UnsupportedSignature for the forms the engine does not load (macro,
    byte-compare, PCRE, fuzzy image hash).
    """
    if text.startswith("${"):
        raise UnsupportedSignature("macro subsignature")
    if _BYTE_COMPARE.match(text):
        raise UnsupportedSignature("byte-compare subsignature")
    if "/" in text:
        raise UnsupportedSignature("PCRE subsignature")
    if text.startswith("fuzzy_img#"):
        raise UnsupportedSignature("fuzzy image hash subsignature")
    modifiers = ""
    if "::" in text:
        text, modifiers = text.rsplit("::", 1)
    offset: str | None = None
    if ":" in text:
        offset, text = text.split(":", 1)
    return text, modifiers.lower(), offset


def _range(text: str) -> tuple[int, int]:
    m = _RANGE.fullmatch(text)
    if not m:
        raise MalformedSignature(f"bad range {text!r}")
    low = int(m.group(1))
    if m.group(2) is None:
        return (low, low)
    high = int(m.group(2)) if m.group(2) else (1 << 63)
    if high < low:
        raise MalformedSignature(f"bad range {text!r}")
    return (low, high)
