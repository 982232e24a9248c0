"""Golden messages: each tests/data/golden/NAME.eml must get the verdict in NAME.json.

Only the bundled signatures are loaded, so the results do not depend on what
freshclam left on the machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailwarden.engine import Engine, EngineSettings
from mailwarden.verdict import Status

GOLDEN = Path(__file__).parent.parent / "data" / "golden"
CASES = sorted(p.stem for p in GOLDEN.glob("*.eml"))


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    cache = tmp_path_factory.mktemp("cache")
    return Engine.load(EngineSettings(databases=(), bundled=True, cache_dir=cache))


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 15


@pytest.mark.parametrize("name", CASES)
def test_golden_verdict(engine: Engine, name: str) -> None:
    expected = json.loads((GOLDEN / f"{name}.json").read_text())
    verdict = engine.scan_bytes((GOLDEN / f"{name}.eml").read_bytes())
    assert verdict.status is Status(expected["status"]), verdict
    if expected["name"] is not None:
        assert verdict.name == expected["name"], verdict
    if expected["part"] is not None:
        assert verdict.findings[0].part == expected["part"], verdict
    if expected["reason"] is not None:
        assert verdict.reason is not None and expected["reason"] in verdict.reason, verdict
    if verdict.status is Status.CLEAN:
        assert verdict.findings == () and verdict.reason is None


def test_scan_file_maps_large_messages(engine: Engine, tmp_path: Path) -> None:
    raw = (GOLDEN / "eicar-attached.eml").read_bytes()
    big = tmp_path / "big.eml"
    # pad the preamble so the file is mapped rather than read
    big.write_bytes(raw.replace(b"preamble", b"preamble" + b" " * (2 * 1024 * 1024), 1))
    verdict = engine.scan_file(big)
    assert verdict.status is Status.INFECTED
    assert verdict.size == big.stat().st_size


def test_all_matches_reports_every_infection(tmp_path: Path) -> None:
    raw = (GOLDEN / "eicar-attached.eml").read_bytes()
    twice = raw.replace(b"--BOUNDARY--", b"--BOUNDARY\r\n" + raw.split(b"--BOUNDARY\r\n")[2])
    settings = EngineSettings(bundled=True, cache_dir=tmp_path, all_matches=True)
    verdict = Engine.load(settings).scan_bytes(twice)
    parts = {f.part for f in verdict.findings if f.name == "Eicar-Test-Signature"}
    assert len(parts) >= 2, verdict
