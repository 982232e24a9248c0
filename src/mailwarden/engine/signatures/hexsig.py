"""ClamAV hex body patterns: parse them and compile them to regular expressions.

Used by the database parsers: :func:`compile_hexsig` takes the pattern text of
an ``.ndb`` signature or ``.ldb`` subsignature (with the subsignature
modifiers ``i``, ``w``, ``f``, ``a``) and returns a :class:`CompiledPattern`
holding

* ``regex``: an exact Python ``re`` expression (bytes, DOTALL semantics);
* ``hs``: an expression for Hyperscan that matches a superset of ``regex``
  (a prefilter) when ``exact`` is false; empty when ``regex`` itself is
  what Hyperscan compiles (it accepts the lazy quantifiers ``re`` uses);
* ``atoms``: literal byte strings, one of which occurs in every match (the
  multi-literal prefilter of the Aho-Corasick fallback).  Empty when the
  pattern has no usable literal;
* ``plan``: the pattern cut at its gap ranges into pieces, the form
  ``confirm`` checks a candidate with in linear time (see ``confirm`` for the
  encoding).  Empty when ``regex`` is a single piece already.

Syntax (ClamAV's body-signature format): hex bytes, ``??``, nibbles ``a?`` and
``?a``, ``*``, ``{n}``, ``{n-}``, ``{-n}``, ``{n-m}``, anchored ranges
``[n-m]``, alternatives ``(aa|bbcc|dd??)`` including multi-byte and generic
ones, negated fixed-width alternatives ``!(aa|bb)`` and the character class
``(W)`` (a non-alphanumeric byte).  The boundary classes ``(B)`` and ``(L)``
are reported as unsupported, and so is a gap range (``*``, ``{n-m}``...)
inside an alternative, which ClamAV does not accept either.

What Hyperscan cannot say exactly, and how it is approximated there:
negated multi-byte alternatives (any bytes of that width), the ``f`` fullword
modifier (no boundary check) and repeats longer than :data:`HS_MAX_REPEAT`
(an open-ended gap).  Such patterns are flagged inexact and confirmed with
``re``.

SECURITY: the input is database text.  Every number is bounded, nesting depth
is limited, and no pattern may match the empty string, so the compiled
expressions cannot hang the matcher on an empty match.  A piece of a plan has
no gap range, so matching it at one position costs at most its own width
(times its alternatives): the whole pattern's ``regex`` is only ever handed
to Hyperscan, never searched with ``re`` when it has gap ranges.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from mailwarden.engine.signatures.cursor import Cursor
from mailwarden.engine.signatures.offsets import MalformedSignature, UnsupportedSignature

#: Bounded repeats longer than this become open-ended gaps in the Hyperscan form:
#: big counted repeats blow up Hyperscan's compile time and database size.
HS_MAX_REPEAT = 1024
#: Gaps are bounded like ClamAV's 32-bit offsets.
_MAX_GAP = 0xFFFFFFFF
_MAX_DEPTH = 8
_ALNUM = frozenset(range(0x30, 0x3A)) | frozenset(range(0x41, 0x5B)) | frozenset(range(0x61, 0x7B))
_NON_ALNUM = frozenset(range(256)) - _ALNUM
_HEX = frozenset("0123456789abcdefABCDEF")
_HEX_ONLY = re.compile(r"(?:[0-9a-fA-F]{2})+")
_HEX_RUN = re.compile(r"(?:[0-9a-fA-F]{2})+(?![?])")


# --- pattern tree ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lit:
    data: bytes


@dataclass(frozen=True, slots=True)
class Cls:
    """One byte from a set."""

    members: frozenset[int]


@dataclass(frozen=True, slots=True)
class Gap:
    """Any ``lo`` to ``hi`` bytes (``hi`` None: unbounded)."""

    lo: int
    hi: int | None


@dataclass(frozen=True, slots=True)
class Alt:
    options: tuple[Seq, ...]


@dataclass(frozen=True, slots=True)
class NegAlt:
    """``width`` bytes that equal none of ``options``."""

    options: tuple[bytes, ...]
    width: int


@dataclass(frozen=True, slots=True)
class Seq:
    items: tuple[Node, ...]


Node = Lit | Cls | Gap | Alt | NegAlt | Seq
T = TypeVar("T")
#: per-node results within one compile, by id (the node is kept alive beside its result)
_Memo = dict[int, tuple[Node, T]]


class CompiledPattern(NamedTuple):
    """A compiled pattern (a named tuple: a big load makes hundreds of thousands)."""

    regex: bytes
    hs: bytes
    exact: bool
    caseless: bool
    atoms: tuple[bytes, ...]
    min_len: int
    plan: bytes = b""


# --- parser ------------------------------------------------------------------


class _Parser(Cursor):
    def __init__(self, text: str) -> None:
        super().__init__(text, "hex pattern")

    def number(self, limit: int = _MAX_GAP) -> int:
        return super().number(limit)

    def sequence(self, depth: int) -> Seq:
        items: list[Node] = []
        while self.pos < len(self.text):
            run = _HEX_RUN.match(self.text, self.pos)
            if run:
                # the common case: a stretch of plain bytes, taken in one step
                items.append(Lit(bytes.fromhex(run.group(0))))
                self.pos = run.end()
                continue
            if self.text[self.pos] in "|)":
                break
            items.append(self.item(depth))
        return Seq(tuple(items))

    def item(self, depth: int) -> Node:
        ch = self.peek()
        two = self.peek(2)
        if ch == "*":
            self.pos += 1
            return Gap(0, None)
        if ch == "{":
            return self.braces()
        if ch == "[":
            self.pos += 1
            lo = self.number()
            self.expect("-")
            hi = self.number()
            self.expect("]")
            if hi < lo:
                raise self.fail("range upper bound below lower bound")
            return Gap(lo, hi)
        if ch == "!":
            self.pos += 1
            if self.peek() != "(":
                raise self.fail("'!' must precede an alternative")
            return self.negated(depth)
        if ch == "(":
            cls = self.text[self.pos + 1 : self.pos + 3].upper()
            if cls in ("B)", "L)"):
                raise UnsupportedSignature(f"character class ({cls[0]})")
            if cls == "W)":
                self.pos += 3
                return Cls(_NON_ALNUM)
            return self.alternative(depth)
        if len(two) == 2:
            return self.byte(two)
        raise self.fail(f"unexpected {ch!r}")

    def byte(self, two: str) -> Node:
        hi, lo = two[0], two[1]
        self.pos += 2
        if hi in _HEX and lo in _HEX:
            return Lit(bytes((int(two, 16),)))
        if two == "??":
            return Gap(1, 1)
        if hi in _HEX and lo == "?":
            base = int(hi, 16) << 4
            return Cls(frozenset(range(base, base + 16)))
        if hi == "?" and lo in _HEX:
            low = int(lo, 16)
            return Cls(frozenset(range(low, 256, 16)))
        self.pos -= 2
        raise self.fail(f"bad byte {two!r}")

    def braces(self) -> Gap:
        self.expect("{")
        if self.peek() == "-":
            self.pos += 1
            hi = self.number()
            self.expect("}")
            return Gap(0, hi)
        lo = self.number()
        if self.peek() == "}":
            self.pos += 1
            return Gap(lo, lo)
        self.expect("-")
        if self.peek() == "}":
            self.pos += 1
            return Gap(lo, None)
        hi = self.number()
        self.expect("}")
        if hi < lo:
            raise self.fail("range upper bound below lower bound")
        return Gap(lo, hi)

    def options(self, depth: int) -> list[Seq]:
        if depth >= _MAX_DEPTH:
            raise self.fail("alternatives nested too deeply")
        self.expect("(")
        opts = [self.sequence(depth + 1)]
        while self.peek() == "|":
            self.pos += 1
            opts.append(self.sequence(depth + 1))
        self.expect(")")
        if any(not o.items for o in opts):
            raise self.fail("empty alternative")
        return opts

    def alternative(self, depth: int) -> Alt:
        return Alt(tuple(self.options(depth)))

    def negated(self, depth: int) -> NegAlt:
        opts = self.options(depth)
        literals: list[bytes] = []
        for opt in opts:
            if not all(isinstance(i, Lit) for i in opt.items):
                raise self.fail("negated alternatives must be plain bytes")
            literals.append(b"".join(i.data for i in opt.items if isinstance(i, Lit)))
        width = len(literals[0])
        if any(len(x) != width for x in literals):
            raise self.fail("negated alternatives must have equal length")
        return NegAlt(tuple(literals), width)


def parse_hexsig(text: str) -> Seq:
    """Parse ClamAV hex-pattern text into a tree; raises MalformedSignature."""
    parser = _Parser(text.strip())
    seq = parser.sequence(0)
    if parser.pos != len(parser.text):
        raise parser.fail("unbalanced ')' or '|'")
    if not seq.items:
        raise MalformedSignature("empty hex pattern")
    return _merge(seq)


def _merge(seq: Seq) -> Seq:
    """Join adjacent literals so atoms and emitted text stay compact."""
    out: list[Node] = []
    for item in seq.items:
        if isinstance(item, Alt):
            item = Alt(tuple(_merge(o) for o in item.options))
        if isinstance(item, Lit) and out and isinstance(out[-1], Lit):
            out[-1] = Lit(out[-1].data + item.data)
        else:
            out.append(item)
    return Seq(tuple(out))


# --- modifiers ---------------------------------------------------------------


def _widen(node: Node) -> Node:
    """Interleave every literal byte with NUL: ClamAV's ``w`` (gaps stay as they are)."""
    if isinstance(node, Lit):
        return Lit(b"".join(bytes((b, 0)) for b in node.data))
    if isinstance(node, Cls):
        return Seq((node, Lit(b"\x00")))
    if isinstance(node, NegAlt):
        return Seq((node, Lit(b"\x00")))
    if isinstance(node, Alt):
        return Alt(tuple(Seq((_widen(o),)) for o in node.options))
    if isinstance(node, Seq):
        return Seq(tuple(_widen(i) for i in node.items))
    return node


def lengths(
    node: Node, memo: _Memo[tuple[int, int | None]] | None = None
) -> tuple[int, int | None]:
    """Shortest and longest match of ``node`` (longest None: unbounded)."""
    if memo is not None:
        known = memo.get(id(node))
        if known is not None:
            return known[1]
        found = lengths(node)
        # the node is kept with its answer, so its id is not reused meanwhile
        memo[id(node)] = (node, found)
        return found
    if isinstance(node, Lit):
        return len(node.data), len(node.data)
    if isinstance(node, Cls):
        return 1, 1
    if isinstance(node, Gap):
        return node.lo, node.hi
    if isinstance(node, NegAlt):
        return node.width, node.width
    parts = [lengths(o) for o in (node.options if isinstance(node, Alt) else node.items)]
    lows = [lo for lo, _ in parts]
    highs = [hi for _, hi in parts if hi is not None]
    longest = (
        None if len(highs) < len(parts) else max(highs) if isinstance(node, Alt) else sum(highs)
    )
    return (min(lows) if isinstance(node, Alt) else sum(lows)), longest


def min_length(node: Node) -> int:
    return lengths(node)[0]


# --- emitters ----------------------------------------------------------------


def _esc(data: bytes) -> bytes:
    return escape_literal(data) if data else b""


def _cls(members: frozenset[int], negate: bool = False) -> bytes:
    if len(members) == 256 and not negate:
        return b"."
    ranges: list[tuple[int, int]] = []
    for b in sorted(members):
        if ranges and ranges[-1][1] == b - 1:
            ranges[-1] = (ranges[-1][0], b)
        else:
            ranges.append((b, b))
    body = b"".join(
        _esc(bytes((a,))) if a == z else _esc(bytes((a,))) + b"-" + _esc(bytes((z,)))
        for a, z in ranges
    )
    return b"[" + (b"^" if negate else b"") + body + b"]"


def _gap(lo: int, hi: int | None, lazy: bool) -> bytes:
    q = b"?" if lazy else b""
    if hi is None:
        return (b".*" if lo == 0 else b".{%d,}" % lo) + q
    if lo == hi:
        return b"." if lo == 1 else b".{%d}" % lo
    return b".{%d,%d}" % (lo, hi) + q


class _Emitter:
    """Emits one tree as exact ``re`` text or as Hyperscan text (``hs=True``)."""

    def __init__(self, hs: bool, memo: _Memo[bytes] | None = None) -> None:
        self.hs = hs
        self.exact = True
        #: whether the other form would differ (an approximation in the Hyperscan form)
        self.differs = False
        #: texts already emitted for nodes of this tree (the plan emits its pieces again)
        self._memo = memo

    def emit(self, node: Node) -> bytes:
        memo = self._memo
        if memo is None:
            return self._emit(node)
        known = memo.get(id(node))
        if known is not None:
            return known[1]
        text = self._emit(node)
        memo[id(node)] = (node, text)
        return text

    def _emit(self, node: Node) -> bytes:
        if isinstance(node, Lit):
            return _esc(node.data)
        if isinstance(node, Cls):
            return _cls(node.members)
        if isinstance(node, Gap):
            if (node.hi is not None and node.hi > HS_MAX_REPEAT) or node.lo > HS_MAX_REPEAT:
                self.differs = True
            if self.hs and node.hi is not None and node.hi > HS_MAX_REPEAT:
                self.exact = False
                return _gap(min(node.lo, HS_MAX_REPEAT), None, lazy=False)
            if self.hs and node.lo > HS_MAX_REPEAT:
                self.exact = False
                return _gap(HS_MAX_REPEAT, None, lazy=False)
            return _gap(node.lo, node.hi, lazy=True)
        if isinstance(node, NegAlt):
            if node.width == 1:
                return _cls(frozenset(o[0] for o in node.options), negate=True)
            self.differs = True
            if self.hs:
                self.exact = False
                return _gap(node.width, node.width, lazy=False)
            return (
                b"(?!"
                + b"|".join(_esc(o) for o in node.options)
                + b")"
                + _gap(node.width, node.width, lazy=False)
            )
        if isinstance(node, Alt):
            return b"(?:" + b"|".join(self.emit(o) for o in node.options) + b")"
        return b"".join(self.emit(i) for i in node.items)


# --- atoms -------------------------------------------------------------------


def _atoms(node: Node) -> tuple[bytes, ...] | None:
    """Literals of which at least one occurs in every match, or None."""
    if isinstance(node, Lit):
        return (node.data,)
    if isinstance(node, Alt):
        sets = [_atoms(o) for o in node.options]
        if any(s is None for s in sets):
            return None
        return tuple(dict.fromkeys(a for s in sets if s for a in s))
    if isinstance(node, Seq):
        best: tuple[bytes, ...] | None = None
        for item in node.items:
            cand = _atoms(item)
            if cand and (best is None or _score(cand) > _score(best)):
                best = cand
        return best
    return None


def _has_literal(node: Node) -> bool:
    if isinstance(node, Lit):
        return True
    if isinstance(node, Alt):
        return any(_has_literal(o) for o in node.options)
    if isinstance(node, Seq):
        return any(_has_literal(i) for i in node.items)
    return False


def _score(atoms: tuple[bytes, ...]) -> tuple[int, int]:
    return (min(len(a) for a in atoms), -len(atoms))


# --- plans --------------------------------------------------------------------


def _ranged(node: Node) -> bool:
    return isinstance(node, Gap) and node.lo != node.hi


def _no_range_in_alternatives(node: Node, inside: bool = False) -> None:
    if inside and _ranged(node):
        raise UnsupportedSignature("gap range inside an alternative")
    if isinstance(node, Alt):
        for option in node.options:
            _no_range_in_alternatives(option, True)
    elif isinstance(node, Seq):
        for item in node.items:
            _no_range_in_alternatives(item, inside)


def _flat(node: Node) -> list[Node]:
    if isinstance(node, Seq):
        return [x for item in node.items for x in _flat(item)]
    return [node]


def _gap_text(lo: int, hi: int | None) -> bytes:
    return b"%d-" % lo if hi is None else b"%d-%d" % (lo, hi)


def _chain(
    items: list[Node], fullword: bool, texts: _Memo[bytes], sizes: _Memo[tuple[int, int | None]]
) -> bytes:
    """One chain of the plan: ``lead TAB piece TAB gap TAB piece ... TAB trail``.

    The pattern is cut at every gap range; fixed gaps next to a cut join the
    gap, so a piece starts and ends with a byte it must match.  A piece is
    ``minwidth,maxwidth,regex``; a gap ``lo-hi`` or ``lo-`` (unbounded).
    """
    fields: list[bytes] = []
    piece: list[Node] = []
    # the gap being collected; hi None: unbounded
    lo: int = 0
    hi: int | None = 0

    def close_piece() -> None:
        nonlocal lo, hi
        # fixed gaps at the piece's end belong to the next gap
        after = 0
        while piece and isinstance(gap := piece[-1], Gap):
            piece.pop()
            after += gap.lo
        if not piece:
            lo += after
            hi = None if hi is None else hi + after
            return
        seq = Seq(tuple(piece))
        # a piece holds no gap range (none in alternatives either), so it has a longest
        shortest, longest = lengths(seq, sizes)
        fields.append(_gap_text(lo, hi))
        fields.append(b"%d,%d," % (shortest, longest or 0) + _Emitter(False, texts).emit(seq))
        piece.clear()
        lo, hi = after, after

    for item in items:
        if isinstance(item, Gap) and (_ranged(item) or not piece):
            # a range, or a fixed gap with no piece before it: part of the gap
            close_piece()
            lo += item.lo
            hi = None if hi is None or item.hi is None else hi + item.hi
        else:
            piece.append(item)
    close_piece()
    fields.append(_gap_text(lo, hi))
    if fullword:
        first, last = 1, len(fields) - 2
        fields[first] = _wrap(fields[first], b"(?<![0-9A-Za-z])(?:", b")")
        fields[last] = _wrap(fields[last], b"(?:", b")(?![0-9A-Za-z])")
    return b"\t".join(fields)


def _wrap(piece: bytes, before: bytes, after: bytes) -> bytes:
    widths, _, regex = piece.partition(b",")
    widths2, _, regex = regex.partition(b",")
    return widths + b"," + widths2 + b"," + before + regex + after


def _plan(
    tree: Node,
    fullword: bool,
    texts: _Memo[bytes] | None = None,
    sizes: _Memo[tuple[int, int | None]] | None = None,
) -> bytes:
    """The plan of ``tree`` (see :func:`_chain`); chains of a top-level choice on separate lines.

    Empty when the tree is one piece with nothing around it: its ``regex``
    is then the plan.
    """
    options = tree.options if isinstance(tree, Alt) else (tree,)
    flat = [_flat(o) for o in options]
    if not any(_ranged(i) for items in flat for i in items):
        return b""
    texts = {} if texts is None else texts
    sizes = {} if sizes is None else sizes
    return b"\n".join(_chain(items, fullword, texts, sizes) for items in flat)


# --- entry point -------------------------------------------------------------


def _plain(text: str) -> CompiledPattern | None:
    """The common case, hex digits only, compiled without building a tree."""
    try:
        data = bytes.fromhex(text)
    except ValueError:
        return None
    if not data or len(text) != 2 * len(data):
        return None  # empty, or fromhex skipped whitespace
    return CompiledPattern(escape_literal(data), b"", True, False, (data,), len(data))


def is_plain(text: str) -> bool:
    """Whether ``text`` takes the fast path of :func:`compile_hexsig` (hex digits only)."""
    return _HEX_ONLY.fullmatch(text) is not None


def escape_literal(data: bytes) -> bytes:
    """``data`` as an expression of ``\\xNN`` escapes, for ``re`` and Hyperscan alike."""
    return b"\\x" + data.hex(":").replace(":", "\\x").encode("ascii")


def compile_hexsig(text: str, modifiers: str = "") -> CompiledPattern:
    """Compile pattern text plus ``.ldb`` modifiers (a subset of ``iwfa``)."""
    if not modifiers:
        plain = _plain(text)
        if plain is not None:
            return plain
    unknown = set(modifiers) - set("iwfa")
    if unknown:
        raise MalformedSignature(f"unknown subsignature modifier {''.join(sorted(unknown))!r}")
    tree: Node = parse_hexsig(text)
    _no_range_in_alternatives(tree)
    if "w" in modifiers:
        wide = _widen(tree)
        tree = Alt((Seq((tree,)), Seq((wide,)))) if "a" in modifiers else wide
    # what the regex, the lengths and the plan work out per node, worked out once
    texts: _Memo[bytes] = {}
    sizes: _Memo[tuple[int, int | None]] = {}
    shortest = lengths(tree, sizes)[0]
    if shortest == 0 or not _has_literal(tree):
        # a pattern of wildcards only would match every payload; ClamAV refuses it too
        raise MalformedSignature("hex pattern has no fixed bytes")
    exact_em = _Emitter(False, texts)
    regex = exact_em.emit(tree)
    hs, exact = b"", True  # Hyperscan takes the exact text as it is: one copy
    if exact_em.differs:
        hs_em = _Emitter(hs=True)
        hs, exact = hs_em.emit(tree), hs_em.exact
    if "f" in modifiers:
        regex = b"(?<![0-9A-Za-z])(?:" + regex + b")(?![0-9A-Za-z])"
        exact = False
    caseless = "i" in modifiers
    atoms = _atoms(tree) or ()
    if caseless:
        atoms = tuple(dict.fromkeys(a.lower() for a in atoms))
    plan = _plan(tree, "f" in modifiers, texts, sizes)
    return CompiledPattern(regex, hs, exact, caseless, atoms, shortest, plan)
