"""`--watch`: a folder's signature files are installed once a change has settled."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from mailwarden.update import Manifest, SetStore, Watcher, updater
from update.helpers import config, hdb_line, settings


def _freshclam(folder: Path, *tags: str, mtime: int) -> None:
    folder.mkdir(exist_ok=True)
    path = folder / "daily.hdb"
    path.write_text("".join(hdb_line(t) for t in tags))
    os.utime(path, (mtime, mtime))
    (folder / "freshclam.dat").write_bytes(b"\x00state")  # not a signature file


def test_a_change_is_installed_after_two_polls_agree(tmp_path: Path) -> None:
    watched = tmp_path / "clamav"
    _freshclam(watched, "one", mtime=1_800_000_000)
    cfg = config(tmp_path)
    watcher = Watcher(cfg, settings(cfg), watched)
    sets = SetStore(tmp_path / "db" / "signatures")
    assert watcher.step() is None  # first look: not settled yet
    result = watcher.step()
    assert result is not None and result.state == "installed"
    assert sorted(p.name for p in (tmp_path / "db" / "signatures").iterdir()) == ["daily.hdb"]
    assert watcher.step() is None  # nothing changed
    first = sets.current()

    _freshclam(watched, "one", "two", mtime=1_800_000_100)
    assert watcher.step() is None  # changed: wait one more look
    assert sets.current() == first
    result = watcher.step()
    assert result is not None and result.state == "installed"
    assert sets.current() != first
    assert "Test.Update.two" in (tmp_path / "db" / "signatures" / "daily.hdb").read_text()


def test_a_file_still_changing_waits(tmp_path: Path) -> None:
    watched = tmp_path / "clamav"
    _freshclam(watched, "one", mtime=1_800_000_000)
    cfg = config(tmp_path)
    watcher = Watcher(cfg, settings(cfg), watched)
    watcher.step()
    _freshclam(watched, "one", "two", mtime=1_800_000_050)
    assert watcher.step() is None
    _freshclam(watched, "one", "two", "three", mtime=1_800_000_060)
    assert watcher.step() is None
    assert SetStore(tmp_path / "db" / "signatures").current() is None
    assert watcher.step() is not None


def test_a_broken_set_is_refused_once_and_the_old_one_kept(tmp_path: Path) -> None:
    watched = tmp_path / "clamav"
    _freshclam(watched, "one", mtime=1_800_000_000)
    cfg = config(tmp_path)
    watcher = Watcher(cfg, settings(cfg), watched)
    watcher.step()
    assert watcher.step() is not None
    sets = SetStore(tmp_path / "db" / "signatures")
    good = sets.current()
    (watched / "daily.hdb").write_text("not a signature\n")
    assert watcher.step() is None
    assert watcher.step() is None  # refused: logged, the old set stays
    assert sets.current() == good
    assert watcher.step() is None  # not tried again until the folder changes
    assert sets.current() == good


def test_run_polls_with_the_injected_sleep(tmp_path: Path) -> None:
    watched = tmp_path / "clamav"
    _freshclam(watched, "one", mtime=1_800_000_000)
    cfg = config(tmp_path)
    watcher = Watcher(cfg, settings(cfg), watched)
    slept: list[float] = []
    watcher.run(sleep=slept.append, stop=lambda: len(slept) >= 3)
    assert slept == [30.0, 30.0, 30.0]  # [update] watch_interval
    assert SetStore(tmp_path / "db" / "signatures").current() is not None


def test_a_file_removed_while_copied_is_tried_again_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    watched = tmp_path / "clamav"
    _freshclam(watched, "one", mtime=1_800_000_000)
    cfg = config(tmp_path)
    watcher = Watcher(cfg, settings(cfg), watched)
    real = updater.make_manifest

    def hashed_then_removed(folder: Path, **kwargs: Any) -> Manifest:
        manifest = real(folder, **kwargs)
        (folder / "daily.hdb").unlink()  # freshclam replaces it between hash and copy
        return manifest

    monkeypatch.setattr(updater, "make_manifest", hashed_then_removed)
    watcher.step()
    assert watcher.step() is None
    assert "daily.hdb" in caplog.text and "trying again" in caplog.text
    assert SetStore(tmp_path / "db" / "signatures").current() is None

    monkeypatch.undo()
    _freshclam(watched, "one", mtime=1_800_000_000)
    assert watcher.step() is None
    result = watcher.step()
    assert result is not None and result.state == "installed"


def test_a_missing_folder_is_reported_once_then_followed_when_it_appears(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    watched = tmp_path / "clamav"
    cfg = config(tmp_path)
    watcher = Watcher(cfg, settings(cfg), watched)
    for _ in range(3):
        assert watcher.step() is None
    assert caplog.text.count("No such file or directory; waiting for it") == 1
    _freshclam(watched, "one", mtime=1_800_000_000)
    watcher.step()
    result = watcher.step()
    assert result is not None and result.state == "installed"
