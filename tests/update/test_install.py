"""The sets on disk: one-rename switch, rollback, pruning, a foreign folder left alone."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from mailwarden.update import InstallError, SetStore
from mailwarden.update.manifest import Entry, Manifest, render


def _install(sets: SetStore, created: int, content: bytes) -> str:
    with sets.staging() as folder:
        (folder / "a.hdb").write_bytes(content)
        manifest = Manifest(
            created, (Entry("a.hdb", len(content), hashlib.sha256(content).hexdigest()),)
        )
        name = sets.install(folder, render(manifest), manifest)
    sets.switch(name)
    return name


def test_switch_replaces_the_link_and_keeps_the_previous_set(tmp_path: Path) -> None:
    sets = SetStore(tmp_path / "signatures", keep=1)
    first = _install(sets, 1_000, b"one")
    assert (tmp_path / "signatures").is_symlink()
    assert (tmp_path / "signatures" / "a.hdb").read_bytes() == b"one"
    # the link is relative, so the folder can be moved or bind-mounted elsewhere
    assert not os.readlink(tmp_path / "signatures").startswith("/")
    second = _install(sets, 2_000, b"two")
    assert (tmp_path / "signatures" / "a.hdb").read_bytes() == b"two"
    assert sets.current() == second
    assert sets.names() == [first, second]
    assert sets.current_manifest() is not None
    # no staging folder or temporary link is left behind
    assert {p.name for p in tmp_path.iterdir()} == {"signatures", "signatures.sets"}
    assert not list(sets.sets.glob(".staging-*"))


def test_rollback_goes_to_the_previous_set(tmp_path: Path) -> None:
    sets = SetStore(tmp_path / "signatures")
    first = _install(sets, 1_000, b"one")
    _install(sets, 2_000, b"two")
    assert sets.rollback() == first
    assert (tmp_path / "signatures" / "a.hdb").read_bytes() == b"one"
    with pytest.raises(InstallError, match="no previous set"):
        sets.rollback()


def test_prune_keeps_the_current_and_keep_older_sets(tmp_path: Path) -> None:
    sets = SetStore(tmp_path / "signatures", keep=2)
    names = [_install(sets, 1_000 * i, f"v{i}".encode()) for i in range(1, 6)]
    removed = sets.prune()
    assert removed == names[:2]
    assert sets.names() == names[2:]
    assert not (sets.sets / f"{names[0]}.manifest").exists()


def test_a_real_folder_is_not_taken_over(tmp_path: Path) -> None:
    (tmp_path / "signatures").mkdir()
    (tmp_path / "signatures" / "main.cvd").write_bytes(b"freshclam's")
    sets = SetStore(tmp_path / "signatures")
    with pytest.raises(InstallError, match="is a folder, not the link"):
        _install(sets, 1_000, b"one")
    assert (tmp_path / "signatures" / "main.cvd").read_bytes() == b"freshclam's"


def test_readers_always_find_a_whole_set_while_switching(tmp_path: Path) -> None:
    import threading

    sets = SetStore(tmp_path / "signatures", keep=5)
    contents = {b"one" * 1000, b"two" * 1000}
    names = [_install(sets, 1_000 + i, c) for i, c in enumerate(sorted(contents))]
    seen: set[bytes] = set()
    failures: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                seen.add((tmp_path / "signatures" / "a.hdb").read_bytes())
            except BaseException as exc:  # a missing link or file is the failure looked for
                failures.append(exc)
                return

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(300):
            sets.switch(names[i % 2])
    finally:
        done.set()
        reader.join(30)
    assert failures == []
    assert seen <= contents and seen
