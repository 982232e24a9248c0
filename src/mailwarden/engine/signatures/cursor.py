"""A text cursor shared by the small recursive-descent parsers of this package.

``hexsig`` (body patterns) and ``logic`` (logical expressions) subclass
:class:`Cursor` for position tracking, look-ahead, bounded numbers and errors
that say where in the text they happened.

SECURITY: numbers are bounded by the caller's ``limit`` so database text
cannot produce huge values.
"""

from __future__ import annotations

from mailwarden.engine.signatures.offsets import MalformedSignature


class Cursor:
    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.pos = 0
        self._what = what

    def fail(self, problem: str) -> MalformedSignature:
        return MalformedSignature(f"{self._what}: {problem} at column {self.pos + 1}")

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def expect(self, ch: str) -> None:
        if self.peek() != ch:
            raise self.fail(f"expected {ch!r}")
        self.pos += 1

    def number(self, limit: int) -> int:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos].isdigit():
            self.pos += 1
        if start == self.pos:
            raise self.fail("expected a number")
        value = int(self.text[start : self.pos])
        if value > limit:
            raise self.fail("number out of range")
        return value
