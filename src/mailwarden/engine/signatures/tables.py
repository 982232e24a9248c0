"""The compiled signature tables: what a loaded database is, matcher aside.

:class:`Tables` holds body patterns (one row per distinct pattern), ``.ndb``
signatures, ``.ldb`` signatures, the hash indexes and the allowlist.  The
parsers fill it through :class:`TableBuilder`; :class:`SignatureSet` reads it
when matching; :func:`to_parts` / :func:`from_parts` turn it into plain
blobs and JSON for the on-disk cache, so a cached load skips all parsing.

Patterns and ``.ndb`` signatures are stored in columns (see ``packed``): a
pattern is a row of its exact ``re`` text, Hyperscan text, literal atoms,
confirmation plan (see ``confirm``), flags, target and offset; a signature a
row of its name, official flag and pattern.  :meth:`Tables.pattern` builds a
:class:`Pattern` for one row when a candidate needs confirming; nothing is
built per row on a cached load.  The
few ``.ldb`` signatures stay objects (their expressions are trees).

SECURITY: :func:`from_parts` treats its input as untrusted (it may be a
damaged cache file): it checks types, lengths and cross-references and
raises ``ValueError`` on anything inconsistent, so a bad cache is rebuilt
instead of being used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from mailwarden.engine.signatures.hashindex import HashIndex, HashIndexBuilder
from mailwarden.engine.signatures.hexsig import CompiledPattern
from mailwarden.engine.signatures.logic import Expr, count_cap, parse_expression
from mailwarden.engine.signatures.offsets import ANY, Offset
from mailwarden.engine.signatures.packed import (
    U8,
    U32,
    Blob,
    Packed,
    PackedBuilder,
    column_bytes,
    column_from,
    decode_atoms,
    encode_atoms,
    new_column,
    packed_from,
    packed_parts,
)

#: The digest lengths ClamAV distinguishes by the length of the hash text.
DIGEST_LENGTHS = {16: "md5", 20: "sha1", 32: "sha256"}
#: Hash domains: whole payload, or one PE section.
FILE, SECTION = "file", "section"
#: Pattern flag bits.
EXACT, CASELESS = 1, 2


@dataclass(frozen=True, slots=True)
class Pattern:
    regex: bytes
    hs: bytes
    exact: bool
    caseless: bool
    atoms: tuple[bytes, ...]
    offset: Offset
    target: int
    plan: bytes = b""


@dataclass(frozen=True, slots=True)
class BodySig:
    name: str
    official: bool
    pattern: int


@dataclass(frozen=True, slots=True)
class LogicalSig:
    name: str
    official: bool
    target: int
    expression: str
    patterns: tuple[int, ...]
    #: inclusive file size range, or None
    filesize: tuple[int, int] | None = None
    #: container condition: None (no condition), "" (root only) or a container label
    container: str | None = None
    expr: Expr = field(init=False, compare=False)
    cap: int = field(init=False, compare=False)

    def __post_init__(self) -> None:
        tree = parse_expression(self.expression, len(self.patterns))
        object.__setattr__(self, "expr", tree)
        object.__setattr__(self, "cap", count_cap(tree))


@dataclass
class PatternColumns:
    regex: Packed = field(default_factory=Packed)
    hs: Packed = field(default_factory=Packed)
    atoms: Packed = field(default_factory=Packed)
    plan: Packed = field(default_factory=Packed)
    flags: Sequence[int] = ()
    target: Sequence[int] = ()
    okind: Sequence[int] = ()
    ovalue: Sequence[int] = ()
    oshift: Sequence[int] = ()


@dataclass
class BodyColumns:
    names: Packed = field(default_factory=Packed)
    official: Sequence[int] = ()
    pattern: Sequence[int] = ()
    #: signatures grouped by pattern: those of pattern p are order[first[p]:first[p+1]]
    first: Sequence[int] = (0,)
    order: Sequence[int] = ()


class PatternList(Sequence[Pattern]):
    """Read-only sequence view of the pattern rows, one :class:`Pattern` per access."""

    def __init__(self, tables: Tables) -> None:
        self._t = tables

    def __len__(self) -> int:
        return len(self._t.p.flags)

    def __getitem__(self, i: int) -> Pattern:  # type: ignore[override]
        return self._t.pattern(i)

    def __iter__(self) -> Iterator[Pattern]:
        return (self._t.pattern(i) for i in range(len(self)))


@dataclass
class Tables:
    p: PatternColumns = field(default_factory=PatternColumns)
    b: BodyColumns = field(default_factory=BodyColumns)
    logicals: list[LogicalSig] = field(default_factory=list)
    #: (domain, digest length, official) -> index
    hashes: dict[tuple[str, int, bool], HashIndex] = field(default_factory=dict)
    #: digest length -> allowlisted payload hashes (.fp / .sfp)
    allow: dict[int, HashIndex] = field(default_factory=dict)
    #: pattern id -> (.ldb index, subsignature index) pairs
    logical_of: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    #: pattern id -> how many matches must be counted (only when more than one)
    count_of: dict[int, int] = field(default_factory=dict)
    #: every target some body pattern has
    targets: frozenset[int] = frozenset()

    @property
    def patterns(self) -> PatternList:
        return PatternList(self)

    @property
    def body_count(self) -> int:
        return len(self.b.pattern)

    def pattern(self, pid: int) -> Pattern:
        p = self.p
        flags = p.flags[pid]
        kind = p.okind[pid]
        offset = Offset() if kind == ANY else Offset(kind, p.ovalue[pid], p.oshift[pid])
        atoms = p.atoms[pid]
        return Pattern(
            p.regex[pid],
            p.hs[pid],
            bool(flags & EXACT),
            bool(flags & CASELESS),
            decode_atoms(atoms) if atoms else (),
            offset,
            p.target[pid],
            p.plan[pid],
        )

    def offset(self, pid: int) -> Offset:
        kind = self.p.okind[pid]
        if kind == ANY:
            return Offset()
        return Offset(kind, self.p.ovalue[pid], self.p.oshift[pid])

    def bodies_of(self, pid: int) -> Sequence[int]:
        b = self.b
        return b.order[b.first[pid] : b.first[pid + 1]]

    def body(self, bi: int) -> BodySig:
        b = self.b
        name = b.names[bi].decode("utf-8", "surrogateescape")
        return BodySig(name, bool(b.official[bi]), b.pattern[bi])

    def index_links(self) -> None:
        """Rebuild the pattern -> logical signature links and the target set."""
        self.logical_of = {}
        self.count_of = {}
        for li, lsig in enumerate(self.logicals):
            for si, pid in enumerate(lsig.patterns):
                self.logical_of.setdefault(pid, []).append((li, si))
                if lsig.cap > 1:
                    self.count_of[pid] = max(self.count_of.get(pid, 1), lsig.cap)
        self.targets = frozenset(self.p.target)


def _group(pattern_of: Sequence[int], npat: int) -> tuple[Sequence[int], Sequence[int]]:
    """Counting sort of signatures by pattern: (first, order) as in BodyColumns."""
    first = new_column(U32, [0]) * (npat + 1)
    for pid in pattern_of:
        first[pid + 1] += 1
    for i in range(npat):
        first[i + 1] += first[i]
    fill = new_column(U32, first[:npat])
    order = new_column(U32, [0]) * len(pattern_of)
    for bi, pid in enumerate(pattern_of):
        order[fill[pid]] = bi
        fill[pid] += 1
    return first, order


class TableBuilder:
    """Collects parsed signatures, de-duplicating identical patterns."""

    def __init__(
        self,
        *,
        keep_atoms: bool = True,
        on_pattern: Callable[[int, CompiledPattern, int], None] | None = None,
    ) -> None:
        #: kept for callers; atoms are always kept (both matchers use them)
        self.keep_atoms = keep_atoms
        #: told (pattern id, pattern, target) of each new pattern, in id order
        self._on_pattern = on_pattern
        self._ids: dict[tuple[bytes, bool, tuple[int, int, int], int], int] = {}
        self._regex = PackedBuilder()
        self._hs = PackedBuilder()
        self._atoms = PackedBuilder()
        self._plan = PackedBuilder()
        self._flags = new_column(U8)
        self._target = new_column(U8)
        self._okind = new_column(U8)
        self._ovalue = new_column(U32)
        self._oshift = new_column(U32)
        self._names = PackedBuilder()
        self._official = new_column(U8)
        self._pattern = new_column(U32)
        self._logicals: list[LogicalSig] = []
        self._hash: dict[tuple[str, int, bool], HashIndexBuilder] = {}
        self._allow: dict[int, HashIndexBuilder] = {}

    def pattern(self, compiled: CompiledPattern, offset: Offset, target: int) -> int:
        okey = offset.encode()
        key = (compiled.regex, compiled.caseless, okey, target)
        pid = self._ids.get(key)
        if pid is None:
            pid = self._ids[key] = len(self._flags)
            # the columns are appended to in place: this runs once per signature
            for column, item in (
                (self._regex, compiled.regex),
                (self._hs, compiled.hs),
                (self._atoms, encode_atoms(compiled.atoms)),
                (self._plan, compiled.plan),
            ):
                column.data += item
                column.ends.append(len(column.data))
            self._flags.append(
                (EXACT if compiled.exact else 0) | (CASELESS if compiled.caseless else 0)
            )
            self._target.append(target)
            self._okind.append(okey[0])
            self._ovalue.append(okey[1])
            self._oshift.append(okey[2])
            if self._on_pattern is not None:
                self._on_pattern(pid, compiled, target)
        return pid

    def body(self, sig: BodySig) -> None:
        self.add_body(sig.name, sig.official, sig.pattern)

    def add_body(self, name: str, official: bool, pattern: int) -> None:
        """:meth:`body` from its fields (no object per signature)."""
        names = self._names
        names.data += name.encode("utf-8", "surrogateescape")
        names.ends.append(len(names.data))
        self._official.append(official)
        self._pattern.append(pattern)

    def logical(self, sig: LogicalSig) -> None:
        self._logicals.append(sig)

    def hash(self, domain: str, digest: bytes, size: int | None, name: str, official: bool) -> None:
        key = (domain, len(digest), official)
        builder = self._hash.get(key)
        if builder is None:
            builder = self._hash[key] = HashIndexBuilder(len(digest))
        builder.add(digest, size, name)

    def hash_builder(self, domain: str, digest_len: int, official: bool) -> HashIndexBuilder:
        """The index builder for one kind of hash, for parsers that add in bulk."""
        key = (domain, digest_len, official)
        builder = self._hash.get(key)
        if builder is None:
            builder = self._hash[key] = HashIndexBuilder(digest_len)
        return builder

    def allow(self, digest: bytes, size: int | None) -> None:
        builder = self._allow.get(len(digest))
        if builder is None:
            builder = self._allow[len(digest)] = HashIndexBuilder(len(digest))
        builder.add(digest, size, "")

    def patterns(self) -> PatternList:
        """The patterns added so far, for starting the matcher before ``build``."""
        cols = PatternColumns(
            self._regex.build(),
            self._hs.build(),
            self._atoms.build(),
            self._plan.build(),
            self._flags,
            self._target,
            self._okind,
            self._ovalue,
            self._oshift,
        )
        return Tables(cols).patterns

    def build(self) -> Tables:
        first, order = _group(self._pattern, len(self._flags))
        tables = Tables(
            PatternColumns(
                self._regex.build(),
                self._hs.build(),
                self._atoms.build(),
                self._plan.build(),
                self._flags,
                self._target,
                self._okind,
                self._ovalue,
                self._oshift,
            ),
            BodyColumns(self._names.build(), self._official, self._pattern, first, order),
            self._logicals,
        )
        tables.hashes = {k: b.build() for k, b in sorted(self._hash.items())}
        tables.allow = {k: b.build() for k, b in sorted(self._allow.items())}
        tables.index_links()
        self._ids = {}
        return tables


# --- cache form --------------------------------------------------------------

_PACKED = ("regex", "hs", "atoms", "plan")
_PATTERN_COLUMNS = (("flags", U8), ("target", U8), ("okind", U8), ("ovalue", U32), ("oshift", U32))
_BODY_COLUMNS = (("official", U8), ("pattern", U32), ("first", U32), ("order", U32))


def to_parts(tables: Tables) -> tuple[dict[str, Any], list[Blob]]:
    """A JSON-able description plus the binary blobs it refers to by index."""
    blobs: list[Blob] = []

    def blob(data: Blob) -> int:
        blobs.append(data)
        return len(blobs) - 1

    p, b = tables.p, tables.b
    meta: dict[str, Any] = {
        "patterns": {
            "count": len(p.flags),
            **{k: [blob(x) for x in packed_parts(getattr(p, k))] for k in _PACKED},
            **{k: blob(column_bytes(getattr(p, k))) for k, _ in _PATTERN_COLUMNS},
        },
        "bodies": {
            "count": len(b.pattern),
            "names": [blob(x) for x in packed_parts(b.names)],
            **{k: blob(column_bytes(getattr(b, k))) for k, _ in _BODY_COLUMNS},
        },
        "logicals": [
            [
                s.name,
                int(s.official),
                s.target,
                s.expression,
                list(s.patterns),
                list(s.filesize) if s.filesize else None,
                s.container,
            ]
            for s in tables.logicals
        ],
        "hashes": [
            [domain, dlen, int(official), *(blob(p) for p in index.to_parts())]
            for (domain, dlen, official), index in tables.hashes.items()
        ],
        "allow": [
            [dlen, *(blob(p) for p in index.to_parts())] for dlen, index in tables.allow.items()
        ],
    }
    return meta, blobs


def _max(col: Sequence[int]) -> int:
    return max(col) if len(col) else -1


def from_parts(meta: dict[str, Any], blobs: Sequence[Blob]) -> Tables:
    """Rebuild :class:`Tables` from :func:`to_parts` output; ValueError if damaged."""
    try:
        pm, bm = meta["patterns"], meta["bodies"]
        npat, nbody = int(pm["count"]), int(bm["count"])
        strings = {k: packed_from(blobs[pm[k][0]], blobs[pm[k][1]], npat) for k in _PACKED}
        cols = {k: column_from(blobs[pm[k]], code, npat) for k, code in _PATTERN_COLUMNS}
        pcols = PatternColumns(**strings, **cols)  # type: ignore[arg-type]
        sizes = {"official": nbody, "pattern": nbody, "first": npat + 1, "order": nbody}
        bcols = BodyColumns(
            packed_from(blobs[bm["names"][0]], blobs[bm["names"][1]], nbody),
            **{k: column_from(blobs[bm[k]], code, sizes[k]) for k, code in _BODY_COLUMNS},
        )
        # cross-references: every index must point inside its table
        if _max(bcols.pattern) >= npat or _max(bcols.order) >= max(nbody, 1):
            raise ValueError("cached signature refers to a missing pattern")
        if bcols.first[0] != 0 or bcols.first[npat] != nbody or _max(bcols.first) > nbody:
            raise ValueError("cached signature groups are damaged")
        tables = Tables(pcols, bcols)
        for name, official, target, expression, pids, fsize, container in meta["logicals"]:
            if any(not 0 <= int(p) < npat for p in pids):
                raise ValueError("cached signature refers to a missing pattern")
            tables.logicals.append(
                LogicalSig(
                    str(name),
                    bool(official),
                    int(target),
                    str(expression),
                    tuple(int(p) for p in pids),
                    (int(fsize[0]), int(fsize[1])) if fsize else None,
                    None if container is None else str(container),
                )
            )
        for domain, dlen, official, rec, sizes_blob, names in meta["hashes"]:
            tables.hashes[(str(domain), int(dlen), bool(official))] = HashIndex.from_parts(
                int(dlen), blobs[rec], blobs[sizes_blob], blobs[names]
            )
        for dlen, rec, sizes_blob, names in meta["allow"]:
            tables.allow[int(dlen)] = HashIndex.from_parts(
                int(dlen), blobs[rec], blobs[sizes_blob], blobs[names]
            )
    except (KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"cached tables are damaged: {exc}") from exc
    tables.index_links()
    return tables
