"""The compiled signature tables: what a loaded database is, matcher aside.

:class:`Tables` holds body patterns (one row per distinct pattern), ``.ndb``
signatures, ``.ldb`` signatures, the hash indexes and the allowlist.  The
parsers fill it through :class:`TableBuilder`; :class:`SignatureSet` reads it
when matching; :func:`to_parts` / :func:`from_parts` turn it into plain
blobs and JSON for the on-disk cache, so a cached load skips all parsing.

SECURITY: :func:`from_parts` treats its input as untrusted (it may be a
damaged cache file): it checks types and cross-references and raises
``ValueError`` on anything inconsistent, so a bad cache is rebuilt instead of
being used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mailwarden.engine.signatures.hashindex import HashIndex, HashIndexBuilder
from mailwarden.engine.signatures.hexsig import CompiledPattern
from mailwarden.engine.signatures.logic import Expr, count_cap, parse_expression
from mailwarden.engine.signatures.offsets import Offset

#: The digest lengths ClamAV distinguishes by the length of the hash text.
DIGEST_LENGTHS = {16: "md5", 20: "sha1", 32: "sha256"}
#: Hash domains: whole payload, or one PE section.
FILE, SECTION = "file", "section"


@dataclass(frozen=True, slots=True)
class Pattern:
    regex: bytes
    hs: bytes
    exact: bool
    caseless: bool
    atoms: tuple[bytes, ...]
    offset: Offset
    target: int


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
class Tables:
    patterns: list[Pattern] = field(default_factory=list)
    bodies: list[BodySig] = field(default_factory=list)
    logicals: list[LogicalSig] = field(default_factory=list)
    #: (domain, digest length, official) -> index
    hashes: dict[tuple[str, int, bool], HashIndex] = field(default_factory=dict)
    #: digest length -> allowlisted payload hashes (.fp / .sfp)
    allow: dict[int, HashIndex] = field(default_factory=dict)
    #: pattern id -> the .ndb signatures using it
    body_of: dict[int, list[int]] = field(default_factory=dict)
    #: pattern id -> (.ldb index, subsignature index) pairs
    logical_of: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    #: pattern id -> how many matches must be counted (only when more than one)
    count_of: dict[int, int] = field(default_factory=dict)

    def index_links(self) -> None:
        """Rebuild the pattern -> signature links from the signature lists."""
        self.body_of = {}
        self.logical_of = {}
        self.count_of = {}
        for i, sig in enumerate(self.bodies):
            self.body_of.setdefault(sig.pattern, []).append(i)
        for li, lsig in enumerate(self.logicals):
            for si, pid in enumerate(lsig.patterns):
                self.logical_of.setdefault(pid, []).append((li, si))
                if lsig.cap > 1:
                    self.count_of[pid] = max(self.count_of.get(pid, 1), lsig.cap)


class TableBuilder:
    """Collects parsed signatures, de-duplicating identical patterns."""

    def __init__(self, *, keep_atoms: bool = True) -> None:
        #: literal atoms serve only the Aho-Corasick matcher; Hyperscan needs none
        self.keep_atoms = keep_atoms
        self.tables = Tables()
        self._pattern_ids: dict[tuple[bytes, bool, tuple[int, int, int], int], int] = {}
        self._hash: dict[tuple[str, int, bool], HashIndexBuilder] = {}
        self._allow: dict[int, HashIndexBuilder] = {}

    def pattern(self, compiled: CompiledPattern, offset: Offset, target: int) -> int:
        key = (compiled.regex, compiled.caseless, offset.encode(), target)
        pid = self._pattern_ids.get(key)
        if pid is None:
            pid = len(self.tables.patterns)
            self._pattern_ids[key] = pid
            self.tables.patterns.append(
                Pattern(
                    compiled.regex,
                    compiled.hs,
                    compiled.exact,
                    compiled.caseless,
                    compiled.atoms if self.keep_atoms else (),
                    offset,
                    target,
                )
            )
        return pid

    def body(self, sig: BodySig) -> None:
        self.tables.bodies.append(sig)

    def logical(self, sig: LogicalSig) -> None:
        self.tables.logicals.append(sig)

    def hash(self, domain: str, digest: bytes, size: int | None, name: str, official: bool) -> None:
        key = (domain, len(digest), official)
        builder = self._hash.get(key)
        if builder is None:
            builder = self._hash[key] = HashIndexBuilder(len(digest))
        builder.add(digest, size, name)

    def allow(self, digest: bytes, size: int | None) -> None:
        builder = self._allow.get(len(digest))
        if builder is None:
            builder = self._allow[len(digest)] = HashIndexBuilder(len(digest))
        builder.add(digest, size, "")

    def build(self) -> Tables:
        self.tables.hashes = {k: b.build() for k, b in sorted(self._hash.items())}
        self.tables.allow = {k: b.build() for k, b in sorted(self._allow.items())}
        self.tables.index_links()
        self._pattern_ids = {}
        return self.tables


# --- cache form --------------------------------------------------------------


def to_parts(tables: Tables) -> tuple[dict[str, Any], list[bytes]]:
    """A JSON-able description plus the binary blobs it refers to by index."""
    blobs: list[bytes] = []

    def blob(data: bytes) -> int:
        blobs.append(data)
        return len(blobs) - 1

    regexes = blob(b"\x00".join(p.regex for p in tables.patterns))
    hs = blob(b"\x00".join(p.hs for p in tables.patterns))
    atoms = blob(b"\n".join(b",".join(a.hex().encode() for a in p.atoms) for p in tables.patterns))
    meta: dict[str, Any] = {
        "patterns": {
            "regex": regexes,
            "hs": hs,
            "atoms": atoms,
            "rows": [
                [int(p.exact), int(p.caseless), *p.offset.encode(), p.target]
                for p in tables.patterns
            ],
        },
        "bodies": [[b.name, int(b.official), b.pattern] for b in tables.bodies],
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


def _split(data: bytes, sep: bytes, count: int) -> list[bytes]:
    if count == 0:
        return []
    parts = data.split(sep)
    if len(parts) != count:
        raise ValueError("cached pattern table is damaged")
    return parts


def from_parts(meta: dict[str, Any], blobs: list[bytes]) -> Tables:
    """Rebuild :class:`Tables` from :func:`to_parts` output; ValueError if damaged."""
    try:
        pmeta = meta["patterns"]
        rows = pmeta["rows"]
        regexes = _split(blobs[pmeta["regex"]], b"\x00", len(rows))
        hs = _split(blobs[pmeta["hs"]], b"\x00", len(rows))
        atoms = _split(blobs[pmeta["atoms"]], b"\n", len(rows))
        tables = Tables()
        for i, row in enumerate(rows):
            exact, caseless, okind, oval, oshift, target = (int(x) for x in row)
            tables.patterns.append(
                Pattern(
                    regexes[i],
                    hs[i],
                    bool(exact),
                    bool(caseless),
                    tuple(bytes.fromhex(a.decode("ascii")) for a in atoms[i].split(b",") if a),
                    Offset(okind, oval, oshift),
                    target,
                )
            )
        npat = len(tables.patterns)
        for name, official, pid in meta["bodies"]:
            if not 0 <= int(pid) < npat:
                raise ValueError("cached signature refers to a missing pattern")
            tables.bodies.append(BodySig(str(name), bool(official), int(pid)))
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
        for domain, dlen, official, rec, sizes, names in meta["hashes"]:
            tables.hashes[(str(domain), int(dlen), bool(official))] = HashIndex.from_parts(
                int(dlen), blobs[rec], blobs[sizes], blobs[names]
            )
        for dlen, rec, sizes, names in meta["allow"]:
            tables.allow[int(dlen)] = HashIndex.from_parts(
                int(dlen), blobs[rec], blobs[sizes], blobs[names]
            )
    except (KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"cached tables are damaged: {exc}") from exc
    tables.index_links()
    return tables


def dumps_meta(meta: dict[str, Any]) -> bytes:
    return json.dumps(meta, separators=(",", ":")).encode()
