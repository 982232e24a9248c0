"""Tests of the clamd/mailwarden comparison rules used by the correctness test."""

from __future__ import annotations

from typing import Any

from support.outcomes import Outcome, agree, clamd_outcome, engine_outcome


def _verdict(status: str, *findings: tuple[str, str], reason: str | None = None) -> dict[str, Any]:
    return {
        "status": status,
        "findings": [{"name": n, "part": "", "engine": "x", "category": c} for n, c in findings],
        "reason": reason,
    }


def test_heuristic_findings_alone_count_as_clean_but_are_kept() -> None:
    ours = engine_outcome(_verdict("suspicious", ("Heuristics.DoubleExtension", "suspicious")))
    assert ours.kind == "clean"
    assert ours.suspicious == ("Heuristics.DoubleExtension",)


def test_signature_findings_win_over_heuristics_and_status() -> None:
    ours = engine_outcome(
        _verdict("infected", ("Heuristics.Macro", "suspicious"), ("Sig.A", "infected"))
    )
    assert (ours.kind, ours.names, ours.label) == ("infected", ("Sig.A",), "Sig.A")


def test_unscanned_keeps_its_reason() -> None:
    ours = engine_outcome(_verdict("unscanned", reason="encrypted archive"))
    assert (ours.label, ours.detail) == ("unscanned", "encrypted archive")


def test_agreement_needs_clamds_name_among_ours() -> None:
    theirs = clamd_outcome("stream: Sig.B.UNOFFICIAL FOUND")
    assert agree(theirs, Outcome("infected", ("Sig.A", "Sig.B")))
    assert not agree(theirs, Outcome("infected", ("Sig.A",)))
    assert not agree(theirs, Outcome("clean"))
    assert agree(clamd_outcome("stream: OK"), Outcome("clean", suspicious=("Heuristics.X",)))
    assert not agree(clamd_outcome("stream: OK"), Outcome("unscanned"))
