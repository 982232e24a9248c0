"""A load that runs while `update` switches the set reads the set it started with, whole.

The engine resolves ``database_dir``'s link once when a load begins; the
switch here happens from inside the load, right after its first signature
file was opened, which is the moment a load following the link for each
file would start reading the other set.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mailwarden.engine import Engine, EngineSettings
from mailwarden.update import SetStore, update_from
from update.helpers import config, mirror, payload, settings


def _two_sets(root: Path) -> tuple[SetStore, str, str]:
    """Sets "one" (in use) and "two" (installed, not in use)."""
    cfg = config(root, "reload = false")
    first = update_from(cfg, settings(cfg), str(mirror(root / "m", "one", created=1_800_000_000)))
    second = update_from(cfg, settings(cfg), str(mirror(root / "m", "two", created=1_800_000_100)))
    sets = SetStore(root / "db" / "signatures")
    sets.switch(first.name)
    return sets, first.name, second.name


def _switch_on_first_open(monkeypatch: pytest.MonkeyPatch, sets: SetStore, to: str) -> list[Path]:
    """Make the first signature file opened switch the link to ``to``; the files opened."""
    opened: list[Path] = []
    real_open: Callable[..., Any] = pathlib.Path.open

    def open_and_switch(self: Path, *args: Any, **kwargs: Any) -> Any:
        handle = real_open(self, *args, **kwargs)
        if self.suffix in (".hdb", ".ndb"):
            opened.append(self)
            if len(opened) == 1:
                sets.switch(to)
        return handle

    monkeypatch.setattr(pathlib.Path, "open", open_and_switch)
    return opened


def _load(root: Path, cache: bool) -> Engine:
    # a fresh cache folder: the first load parses, and what it caches is one set
    return Engine.load(
        EngineSettings(
            databases=(root / "db" / "signatures",),
            bundled=False,
            cache_dir=root / "fresh-cache" if cache else None,
        )
    )


@pytest.mark.parametrize("cache", [False, True])
def test_a_load_reads_the_set_the_link_named_when_it_began(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: bool
) -> None:
    sets, first, second = _two_sets(tmp_path)
    opened = _switch_on_first_open(monkeypatch, sets, second)
    engine = _load(tmp_path, cache)
    monkeypatch.undo()

    assert sets.current() == second  # the switch did happen in the middle
    assert len(opened) > 1
    # every signature of set one, none of set two
    assert engine.scan_bytes(payload("one"), as_mail=False).name == "Test.Update.one"
    assert engine.scan_bytes(b"mailwardeone", as_mail=False).name == "Test.Update.Body-one"
    assert engine.scan_bytes(payload("two"), as_mail=False).name is None
    assert engine.scan_bytes(b"mailwardetwo", as_mail=False).name is None
    # read from set one's own folder, whatever the link says meanwhile
    assert {p.parent.name for p in opened} == {first}
    assert {Path(f).parent.name for f in engine.signatures.report.files} == {first}

    # the next load, begun after the switch, reads set two whole
    after = _load(tmp_path, cache)
    assert after.scan_bytes(payload("two"), as_mail=False).name == "Test.Update.two"
    assert after.scan_bytes(payload("one"), as_mail=False).name is None
    assert after.version != engine.version
