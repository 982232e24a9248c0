"""Fixtures for policy tests: ``make_config(text)`` loads a configuration from TOML text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mailwarden.config import Config, load_config


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[[str], Config]:
    def make(text: str = "") -> Config:
        path = tmp_path / "mailwarden.toml"
        path.write_text(text, encoding="utf-8")
        return load_config(path)

    return make
