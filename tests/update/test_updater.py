"""`update` from a mirror folder: verified, test-loaded, switched; anything wrong is refused."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from mailwarden.engine import Engine, EngineSettings
from mailwarden.errors import ConfigError
from mailwarden.update import FetchError, ManifestError, SetStore, UpdateError, update_from
from mailwarden.update.manifest import render
from mailwarden.update.updater import make_manifest
from update.helpers import config, mirror, payload, settings


def _scan(root: Path, tag: str) -> str:
    engine = Engine.load(
        EngineSettings(databases=(root / "db" / "signatures",), bundled=False, cache_dir=None)
    )
    return engine.scan_bytes(payload(tag), as_mail=False).name or ""


def _installed(root: Path) -> str | None:
    return SetStore(root / "db" / "signatures").current()


def test_install_from_a_mirror_folder_then_up_to_date(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    src = mirror(tmp_path / "mirror", "one")
    result = update_from(cfg, settings(cfg), str(src))
    assert result.state == "installed" and result.files == 2
    assert result.version.startswith("local-")
    assert result.reload is not None and result.reload.state == "not running"
    assert _scan(tmp_path, "one") == "Test.Update.one"
    again = update_from(cfg, settings(cfg), str(src))
    assert again.state == "up to date" and again.name == result.name


def test_a_newer_set_replaces_the_old_one(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    update_from(cfg, settings(cfg), str(mirror(tmp_path / "m", "one", created=1_800_000_000)))
    update_from(cfg, settings(cfg), str(mirror(tmp_path / "m", "two", created=1_800_000_100)))
    assert _scan(tmp_path, "two") == "Test.Update.two"
    assert _scan(tmp_path, "one") == ""


def _refused(tmp_path: Path, src: Path, error: type[Exception], match: str) -> None:
    cfg = config(tmp_path)
    before = _installed(tmp_path)
    with pytest.raises(error, match=match):
        update_from(cfg, settings(cfg), str(src))
    assert _installed(tmp_path) == before
    assert _scan(tmp_path, "one") == "Test.Update.one"
    assert not list((tmp_path / "db" / "signatures.sets").glob(".staging-*"))


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    cfg = config(tmp_path)
    update_from(cfg, settings(cfg), str(mirror(tmp_path / "good", "one", created=1_800_000_000)))
    return tmp_path


def test_tampered_file_is_refused_and_the_old_set_kept(installed: Path) -> None:
    src = mirror(installed / "bad", "two", created=1_800_000_100)
    text = (src / "test.hdb").read_text()
    (src / "test.hdb").write_text(text.replace("two", "TWO"))  # same size, other bytes
    _refused(installed, src, FetchError, r"test.hdb: SHA-256 does not match")


def test_truncated_file_is_refused(installed: Path) -> None:
    src = mirror(installed / "bad", "two", created=1_800_000_100)
    (src / "test.hdb").write_bytes((src / "test.hdb").read_bytes()[:-3])
    _refused(installed, src, FetchError, r"truncated")


def test_missing_file_is_refused(installed: Path) -> None:
    src = mirror(installed / "bad", "two", created=1_800_000_100)
    (src / "extra.ndb").unlink()
    _refused(installed, src, FetchError, r"extra.ndb: missing from the mirror folder")


def test_manifest_that_does_not_parse_is_refused(installed: Path) -> None:
    src = mirror(installed / "bad", "two", created=1_800_000_100)
    (src / "MANIFEST").write_bytes(b"mailwarden-manifest 1\ncreated soon\n")
    _refused(installed, src, ManifestError, r"MANIFEST: line 2")


def test_missing_manifest_is_refused(installed: Path) -> None:
    src = mirror(installed / "bad", "two", created=1_800_000_100)
    (src / "MANIFEST").unlink()
    _refused(installed, src, FetchError, r"MANIFEST: missing")


def test_a_set_the_engine_cannot_load_is_refused_before_the_switch(installed: Path) -> None:
    src = installed / "bad"
    mirror(src, "two", created=1_800_000_100)
    (src / "test.hdb").write_text("this is not a hash signature\n")
    (src / "MANIFEST").write_bytes(render(make_manifest(src, created=1_800_000_100)))
    _refused(installed, src, UpdateError, r"does not load.*test.hdb")


def test_an_older_set_needs_force(installed: Path) -> None:
    src = mirror(installed / "old", "zero", created=1_700_000_000)
    _refused(installed, src, UpdateError, r"older than the installed one")
    cfg = config(installed)
    assert update_from(cfg, settings(cfg), str(src), force=True).state == "installed"
    assert _scan(installed, "zero") == "Test.Update.zero"


def test_signed_manifests_with_a_key(installed: Path) -> None:
    key = b"s" * 48
    key_file = installed / "update.key"
    key_file.write_bytes(key + b"\n")
    key_file.chmod(0o600)
    cfg = config(installed, f'key_file = "{key_file}"')
    unsigned = mirror(installed / "unsigned", "two", created=1_800_000_100)
    with pytest.raises(ManifestError, match="not signed"):
        update_from(cfg, settings(cfg), str(unsigned))
    signed = mirror(installed / "signed", "two", created=1_800_000_100, key=key)
    assert update_from(cfg, settings(cfg), str(signed)).state == "installed"
    key_file.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        update_from(cfg, settings(cfg), str(signed))


def test_an_unchanged_mirror_is_not_downloaded_again(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    src = mirror(tmp_path / "m", "one")
    first = update_from(cfg, settings(cfg), str(src))
    # only the manifest is left to fetch: a second download would be refused
    (src / "test.hdb").unlink()
    (src / "extra.ndb").unlink()
    again = update_from(cfg, settings(cfg), str(src))
    assert (again.state, again.name) == ("up to date", first.name)


def test_files_the_set_in_use_holds_are_copied_not_fetched(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    update_from(cfg, settings(cfg), str(mirror(tmp_path / "m1", "one", created=1_800_000_000)))
    # the new set shares extra.ndb (Body-one) with the set in use, which the mirror lacks
    src = mirror(tmp_path / "m2", "one", "two", created=1_800_000_100)
    shared = (src / "extra.ndb").read_bytes()
    (src / "extra.ndb").unlink()
    result = update_from(cfg, settings(cfg), str(src))
    assert result.state == "installed"
    assert (tmp_path / "db" / "signatures" / "extra.ndb").read_bytes() == shared
    assert _scan(tmp_path, "two") == "Test.Update.two"


def test_a_damaged_file_of_the_set_in_use_is_fetched_instead(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    update_from(cfg, settings(cfg), str(mirror(tmp_path / "m1", "one", created=1_800_000_000)))
    held = tmp_path / "db" / "signatures" / "extra.ndb"
    good = held.read_bytes()
    held.write_bytes(good.replace(b"Body", b"BODY"))  # same size, other bytes
    src = mirror(tmp_path / "m2", "one", "two", created=1_800_000_100)
    assert update_from(cfg, settings(cfg), str(src)).state == "installed"
    assert (tmp_path / "db" / "signatures" / "extra.ndb").read_bytes() == good
    assert not list((tmp_path / "db" / "signatures.sets").glob(".staging-*"))


def test_an_install_waits_while_another_holds_the_sets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config(tmp_path)
    src = mirror(tmp_path / "m", "one")
    results: list[str] = []
    second = threading.Thread(
        target=lambda: results.append(update_from(cfg, settings(cfg), str(src)).state)
    )
    with (
        caplog.at_level(logging.INFO, logger="mailwarden.update"),
        SetStore(tmp_path / "db" / "signatures").lock(),
    ):
        second.start()
        deadline = time.monotonic() + 60
        while "another update is installing" not in caplog.text:
            assert time.monotonic() < deadline, "the second install did not wait"
            time.sleep(0.02)
        assert _installed(tmp_path) is None and results == []
    second.join(60)
    assert results == ["installed"]
    assert _scan(tmp_path, "one") == "Test.Update.one"
