"""Golden messages: every ``tests/data/mime/*.eml`` against the ``.json`` beside it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mailwarden.engine.limits import Limits
from mailwarden.engine.mime import extract_mail
from mailwarden.engine.objects import ScanObject, WalkContext

DATA = Path(__file__).resolve().parents[2] / "data" / "mime"
CASES = sorted(DATA.glob("*.eml"))


def test_golden_folder_is_populated() -> None:
    assert len(CASES) >= 10
    for eml in CASES:
        assert eml.with_suffix(".json").is_file(), eml.name


@pytest.mark.parametrize("eml", CASES, ids=[p.stem for p in CASES])
def test_golden_message(eml: Path) -> None:
    expected = json.loads(eml.with_suffix(".json").read_text(encoding="utf-8"))
    ctx = WalkContext(Limits())
    got = [
        {
            "label": child.label,
            "name": child.name,
            "content_type": child.content_type,
            "sha256": hashlib.sha256(child.data).hexdigest(),
        }
        for child in extract_mail(ScanObject(eml.read_bytes()), ctx)
    ]
    assert got == expected["children"]
    assert [list(n) for n in ctx.unscanned_notes] == expected.get("unscanned", [])
