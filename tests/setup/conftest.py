"""Fixtures for the setup tests: a context on private folders.

``setup_ctx(mta_config_dir)`` returns a :class:`SetupContext` whose
mailwarden configuration and state folder live under ``tmp_path`` and that
never runs systemctl.

``stack`` (module): a running mailwarden daemon (``intercept/harness.py``)
for the qmail and ZMailer tests, whose wrappers scan through it.

SECURITY: test-only; everything is written under pytest's temporary folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from intercept.harness import Stack
from mailwarden.setup import SetupContext


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack.create(tmp_path_factory.mktemp("setup-mw"))
    stack.start_daemon()
    yield stack
    stack.stop_all()


@pytest.fixture
def setup_ctx(tmp_path: Path) -> Callable[..., SetupContext]:
    def make(mta_config_dir: Path | None, **extra: object) -> SetupContext:
        config = tmp_path / "mailwarden" / "mailwarden.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        if not config.exists():
            config.write_text("# test\n")
        values: dict[str, object] = {
            "mta_config_dir": mta_config_dir,
            "mailwarden": "/usr/bin/mailwarden",
            "mailwarden_config": config,
            "systemd": False,
        }
        values.update(extra)
        return SetupContext(**values)  # type: ignore[arg-type]

    return make
