"""Signature sets, mirror folders and configurations for the update tests.

SECURITY: test-only; everything lives under the test's temporary folder.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from mailwarden.config import Config, load_config
from mailwarden.update import UpdateSettings, make_manifest
from mailwarden.update.manifest import render
from support.identity import keep_test_user


def payload(tag: str) -> bytes:
    return f"mailwarden-update-test-payload {tag}\n".encode()


def hdb_line(tag: str) -> str:
    data = payload(tag)
    return f"{hashlib.md5(data).hexdigest()}:{len(data)}:Test.Update.{tag}\n"  # noqa: S324


def mirror(
    folder: Path, *tags: str, created: int = 1_800_000_000, key: bytes | None = None
) -> Path:
    """A mirror folder: one .hdb with a signature per tag, and its MANIFEST."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    (folder / "test.hdb").write_text("".join(hdb_line(t) for t in tags))
    (folder / "extra.ndb").write_text(
        f"Test.Update.Body-{tags[0]}:0:*:6d61696c7761726465{tags[0].encode().hex()}\n"
    )
    (folder / "MANIFEST").write_bytes(render(make_manifest(folder, created=created), key))
    return folder


def config_file(root: Path, update_extra: str = "", daemon: str = "") -> Path:
    """A configuration whose engine loads the managed set; the extras go in [update]
    and [daemon] (without a daemon section, no daemon is reachable)."""
    path = root / "mw.toml"
    daemon = daemon or f'socket = "{root / "no-daemon.sock"}"\npid_file = ""'
    path.write_text(
        f"""
[engine]
databases = ["{root / "db" / "signatures"}"]
cache_dir = "{root / "cache"}"

[update]
database_dir = "{root / "db" / "signatures"}"
{update_extra}

[daemon]
{daemon}
"""
    )
    keep_test_user(path)
    return path


def config(root: Path, update_extra: str = "") -> Config:
    return load_config(config_file(root, update_extra))


def settings(cfg: Config) -> UpdateSettings:
    return UpdateSettings.from_config(cfg)
