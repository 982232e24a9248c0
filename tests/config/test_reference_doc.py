"""docs/configuration.md must show exactly what `mailwarden config defaults` prints."""

from __future__ import annotations

from pathlib import Path

from mailwarden.config import render

DOC = Path(__file__).parent.parent.parent / "docs" / "configuration.md"


def test_reference_matches_the_schema() -> None:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("```toml\n", 1)[1].rsplit("```", 1)[0]
    assert block == render(), (
        "docs/configuration.md is stale: regenerate its toml block with "
        "`mailwarden config defaults`"
    )
