"""Loading: sources, bundled set, matcher choice, report, and the on-disk cache."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sig_helpers import EICAR, MATCHERS, write_dbs

from mailwarden.engine.filetype import FileKind
from mailwarden.engine.signatures import load_signatures
from mailwarden.engine.signatures import loader as loader_mod
from mailwarden.errors import SignatureError

DBS = {
    "a.ndb": "Body.One:0:*:6f6e652d626f6479\n",
    "b.ldb": "Logic.One;Target:0;0&1;6c2d61;6c2d62\n",
    "c.hdb": "e2fc714c4727ee9395f324cd2e7f331f:4:Hash.One\n",  # md5("abcd")
    "readme.txt": "not a database\n",
    "notes": "no extension\n",
}


def test_bundled_set_has_eicar_as_official() -> None:
    sigs = load_signatures([], matcher="aho")
    (hit,) = sigs.match(b"prefix " + EICAR + b" suffix", FileKind.TEXT)
    assert (hit.name, hit.official, hit.engine) == ("Eicar-Test-Signature", True, "clamav")
    assert sigs.report.counts == {"ndb": 1}


def test_bundled_can_be_left_out(tmp_path: Path) -> None:
    sigs = load_signatures([], bundled=False, matcher="aho")
    assert sigs.signature_count == 0
    assert sigs.match(EICAR, FileKind.TEXT) == []


def test_directory_loads_known_files_and_counts_the_rest(tmp_path: Path) -> None:
    write_dbs(tmp_path, DBS)
    (tmp_path / "sub").mkdir()
    sigs = load_signatures([tmp_path], bundled=False, matcher="aho")
    assert sigs.report.counts == {"ndb": 1, "ldb": 1, "hdb": 1}
    assert sigs.report.skipped == {"file type .txt": 1, "file without extension": 1}
    assert sigs.signature_count == 3
    assert sorted(Path(f).name for f in sigs.report.files) == ["a.ndb", "b.ldb", "c.hdb"]
    assert [m.name for m in sigs.match(b"abcd", FileKind.BINARY)] == ["Hash.One"]
    assert all(not m.official for m in sigs.match(b"one-body", FileKind.BINARY))


def test_single_files_can_be_named(tmp_path: Path) -> None:
    write_dbs(tmp_path, DBS)
    sigs = load_signatures([tmp_path / "a.ndb"], bundled=False, matcher="aho")
    assert sigs.report.counts == {"ndb": 1}


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SignatureError, match="no such") as info:
        load_signatures([tmp_path / "absent"], matcher="aho")
    assert info.value.file == str(tmp_path / "absent")


def test_unknown_matcher_is_an_error() -> None:
    with pytest.raises(SignatureError, match="matcher"):
        load_signatures([], matcher="fast")  # type: ignore[arg-type]


def test_hyperscan_requested_without_hyperscan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader_mod, "hyperscan_available", lambda: False)
    with pytest.raises(SignatureError, match="hyperscan"):
        load_signatures([], matcher="hyperscan")
    assert load_signatures([], matcher="auto").report.matcher == "aho"


@pytest.mark.parametrize("matcher", MATCHERS)
def test_cache_miss_then_hit_gives_same_results(tmp_path: Path, matcher: str) -> None:
    db = write_dbs(tmp_path / "db", DBS)
    cache = tmp_path / "cache"
    first = load_signatures([db], cache_dir=cache, matcher=matcher)  # type: ignore[arg-type]
    second = load_signatures([db], cache_dir=cache, matcher=matcher)  # type: ignore[arg-type]
    assert not first.report.from_cache
    assert second.report.from_cache
    assert second.report.digest == first.report.digest
    assert second.report.counts == first.report.counts
    assert second.report.skipped == first.report.skipped
    for data in (b"one-body", b"l-a l-b", b"abcd", EICAR, b"nothing"):
        assert second.match(data, FileKind.BINARY, all_matches=True) == first.match(
            data, FileKind.BINARY, all_matches=True
        )


def test_cache_file_is_private_and_directory_too(tmp_path: Path) -> None:
    db = write_dbs(tmp_path / "db", DBS)
    cache = tmp_path / "cache"
    load_signatures([db], cache_dir=cache, matcher="aho")
    (entry,) = cache.iterdir()
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert (
        entry.name == load_signatures([db], cache_dir=cache, matcher="aho").report.digest + ".mwsig"
    )


def test_changed_database_misses_the_cache(tmp_path: Path) -> None:
    db = write_dbs(tmp_path / "db", DBS)
    cache = tmp_path / "cache"
    load_signatures([db], cache_dir=cache, matcher="aho")
    (db / "a.ndb").write_text("Body.Two:0:*:74776f2d626f6479\n")
    again = load_signatures([db], cache_dir=cache, matcher="aho")
    assert not again.report.from_cache
    assert [m.name for m in again.match(b"two-body", FileKind.BINARY)] == ["Body.Two"]


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:-10],
        lambda b: b[:100] + bytes([b[100] ^ 0xFF]) + b[101:],
        lambda b: b[: len(b) - 50] + bytes([b[-50] ^ 0x01]) + b[len(b) - 49 :],
        lambda b: b"garbage",
        lambda b: b"",
    ],
)
def test_corrupt_cache_is_rebuilt(tmp_path: Path, damage: object) -> None:
    db = write_dbs(tmp_path / "db", DBS)
    cache = tmp_path / "cache"
    load_signatures([db], cache_dir=cache, matcher="aho")
    (entry,) = cache.iterdir()
    entry.write_bytes(damage(entry.read_bytes()))  # type: ignore[operator]
    rebuilt = load_signatures([db], cache_dir=cache, matcher="aho")
    assert not rebuilt.report.from_cache
    assert [m.name for m in rebuilt.match(b"one-body", FileKind.BINARY)] == ["Body.One"]
    assert load_signatures([db], cache_dir=cache, matcher="aho").report.from_cache


def test_group_writable_cache_is_not_trusted(tmp_path: Path) -> None:
    db = write_dbs(tmp_path / "db", DBS)
    cache = tmp_path / "cache"
    load_signatures([db], cache_dir=cache, matcher="aho")
    (entry,) = cache.iterdir()
    os.chmod(entry, 0o620)
    assert not load_signatures([db], cache_dir=cache, matcher="aho").report.from_cache


def test_unwritable_cache_dir_still_loads(tmp_path: Path) -> None:
    db = write_dbs(tmp_path / "db", DBS)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    sigs = load_signatures([db], cache_dir=blocker / "cache", matcher="aho")
    assert sigs.report.extra == {"cache write failed": 1}
    assert [m.name for m in sigs.match(b"one-body", FileKind.BINARY)] == ["Body.One"]
