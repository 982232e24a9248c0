"""Replay the regression corpus (``corpus/``): inputs that once broke a parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailwarden.config import load_config
from mailwarden.engine import Engine, EngineSettings
from mailwarden.errors import ConfigError

CORPUS = Path(__file__).with_name("corpus")


def _cases(target: str) -> list[tuple[str, str]]:
    expected: dict[str, str] = json.loads((CORPUS / target / "expected.json").read_text())
    files = {p.name for p in (CORPUS / target).iterdir()} - {"expected.json"}
    # every input has an expectation and every expectation an input
    assert files == set(expected), files ^ set(expected)
    return sorted(expected.items())


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.load(EngineSettings(bundled=True, cache_dir=None))


@pytest.mark.parametrize(("name", "status"), _cases("mime"))
def test_mime_corpus(engine: Engine, name: str, status: str) -> None:
    verdict = engine.scan_bytes((CORPUS / "mime" / name).read_bytes())
    assert verdict.status.value == status, verdict


@pytest.mark.parametrize(("name", "detail"), _cases("config"))
def test_config_corpus(name: str, detail: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(CORPUS / "config" / name)
    assert detail in info.value.detail
    assert info.value.line == 2
