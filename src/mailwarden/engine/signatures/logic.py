"""The logical-expression language of ClamAV ``.ldb`` signatures.

``parse_expression("(0&1)|2>3,2", subsigs=3)`` returns a small tree;
:func:`evaluate` decides it from the per-subsignature match counts of one
scanned buffer.  Grammar (ClamAV's, with ``&`` binding tighter than ``|``)::

    expr    := and ('|' and)*
    and     := unary ('&' unary)*
    unary   := primary [('=' | '>' | '<') X [',' Y]]
    primary := SUBSIG-INDEX | '(' expr ')'

``A=X`` / ``A>X`` / ``A<X`` compare the number of matches that ``A``
generates (for a block, summed over the subsignatures in it) with ``X``; the
``,Y`` form also requires at least ``Y`` different subsignatures of the block
to have matched.  ``A=0`` is negation.

SECURITY: database text only; nesting depth and numbers are bounded so a
hostile expression cannot exhaust the stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailwarden.engine.signatures.cursor import Cursor

_MAX_DEPTH = 64
_MAX_COUNT = 1_000_000


@dataclass(frozen=True, slots=True)
class Sub:
    index: int


@dataclass(frozen=True, slots=True)
class Op:
    op: str  # "&" or "|"
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Cmp:
    op: str  # "=", ">" or "<"
    count: int
    distinct: int
    expr: Expr


Expr = Sub | Op | Cmp


class _Parser(Cursor):
    def __init__(self, text: str, subsigs: int) -> None:
        super().__init__(text.replace(" ", ""), "logical expression")
        self.subsigs = subsigs

    def number(self, limit: int = _MAX_COUNT) -> int:
        return super().number(limit)

    def expr(self, depth: int) -> Expr:
        if depth > _MAX_DEPTH:
            raise self.fail("nested too deeply")
        node = self.conj(depth)
        while self.peek() == "|":
            self.pos += 1
            node = Op("|", node, self.conj(depth))
        return node

    def conj(self, depth: int) -> Expr:
        node = self.unary(depth)
        while self.peek() == "&":
            self.pos += 1
            node = Op("&", node, self.unary(depth))
        return node

    def unary(self, depth: int) -> Expr:
        node = self.primary(depth)
        op = self.peek()
        if op in ("=", ">", "<"):
            self.pos += 1
            count = self.number()
            distinct = 0
            if self.peek() == ",":
                self.pos += 1
                distinct = self.number()
            node = Cmp(op, count, distinct, node)
        return node

    def primary(self, depth: int) -> Expr:
        if self.peek() == "(":
            self.pos += 1
            node = self.expr(depth + 1)
            if self.peek() != ")":
                raise self.fail("expected ')'")
            self.pos += 1
            return node
        index = self.number()
        if index >= self.subsigs:
            raise self.fail(f"subsignature {index} does not exist")
        return Sub(index)


def parse_expression(text: str, subsigs: int) -> Expr:
    """Parse ``text`` for a signature with ``subsigs`` subsignatures."""
    parser = _Parser(text, subsigs)
    node = parser.expr(0)
    if parser.pos != len(parser.text):
        raise parser.fail("unexpected text")
    return node


def leaves(node: Expr) -> list[int]:
    """Subsignature indexes a (sub)expression refers to, in order."""
    if isinstance(node, Sub):
        return [node.index]
    if isinstance(node, Op):
        return leaves(node.left) + leaves(node.right)
    return leaves(node.expr)


def count_cap(node: Expr) -> int:
    """How many matches of one subsignature are worth counting for this expression."""
    if isinstance(node, Sub):
        return 1
    if isinstance(node, Op):
        return max(count_cap(node.left), count_cap(node.right))
    return max(node.count + 1, count_cap(node.expr))


def evaluate(node: Expr, counts: Sequence[int]) -> bool:
    """True when the expression holds for these per-subsignature match counts."""
    if isinstance(node, Sub):
        return counts[node.index] > 0
    if isinstance(node, Op):
        if node.op == "&":
            return evaluate(node.left, counts) and evaluate(node.right, counts)
        return evaluate(node.left, counts) or evaluate(node.right, counts)
    refs = set(leaves(node.expr))
    total = sum(counts[i] for i in refs)
    distinct = sum(1 for i in refs if counts[i] > 0)
    if node.distinct and distinct < node.distinct:
        return False
    if node.op == "=":
        return total == node.count
    if node.op == ">":
        return total > node.count
    return total < node.count
