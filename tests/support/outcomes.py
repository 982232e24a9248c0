"""Reduce clamd's and mailwarden's answers to one comparable form.

clamd can only say clean, infected (one name) or error; mailwarden also says
suspicious (heuristics), unscanned, and may name several signatures.  An
:class:`Outcome` keeps what both can say, plus our heuristic names aside::

    theirs = clamd_outcome("stream: Eicar-Test-Signature.UNOFFICIAL FOUND")
    ours = engine_outcome(verdict.to_dict())     # or a ``scan --json`` record
    assert agree(theirs, ours)

Used by ``tests/engine/test_against_clamd.py`` and ``bench/engine.py``.

SECURITY: pure functions over already parsed data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from support.clamd import parse_reply


@dataclass(frozen=True)
class Outcome:
    """One scanner's answer about one message."""

    kind: str  # clean | infected | unscanned | error
    names: tuple[str, ...] = ()
    detail: str = ""
    suspicious: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """A signature name when infected, else the kind (the differences file's form)."""
        return self.names[0] if self.kind == "infected" else self.kind


def clamd_outcome(reply: str) -> Outcome:
    kind, detail = parse_reply(reply)
    if kind == "infected":
        return Outcome("infected", (detail,))
    return Outcome(kind, detail=detail)


def engine_outcome(verdict: Mapping[str, Any]) -> Outcome:
    """From ``Verdict.to_dict()`` or a ``scan --json`` line: signatures first.

    Heuristic findings alone count as clean, since clamd has nothing like them.
    """
    findings = verdict.get("findings") or []
    infected = tuple(f["name"] for f in findings if f.get("category", "infected") == "infected")
    suspicious = tuple(f["name"] for f in findings if f.get("category") == "suspicious")
    if infected:
        return Outcome("infected", infected, suspicious=suspicious)
    status = verdict["status"]
    if status in ("unscanned", "error"):
        return Outcome(status, detail=verdict.get("reason") or "", suspicious=suspicious)
    return Outcome("clean", suspicious=suspicious)


def agree(theirs: Outcome, ours: Outcome) -> bool:
    """Same kind and, when infected, clamd's one name among ours."""
    if theirs.kind != ours.kind:
        return False
    return theirs.kind != "infected" or theirs.names[0] in ours.names
