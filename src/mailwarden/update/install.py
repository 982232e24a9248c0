"""The installed signature sets on disk, and the switch between them.

Layout, for ``[update] database_dir = /var/lib/mailwarden/signatures``::

    signatures -> signatures.sets/20261127T224000Z-3f2a9c1b7e04   (symbolic link)
    signatures.sets/
        20261127T224000Z-3f2a9c1b7e04/            the files of the set in use
        20261127T224000Z-3f2a9c1b7e04.manifest    its manifest
        20261126T224000Z-8d01aa52c9e3/            the previous set (rollback)
        .staging-k2j4h1/                          a download in progress

Usage::

    sets = SetStore(Path("/var/lib/mailwarden/signatures"), keep=2)
    with sets.staging() as folder: ...                 # removed unless installed
    name = sets.install(folder, manifest_bytes, manifest)
    sets.switch(name)                                  # one rename: atomic
    sets.rollback()
    with sets.lock(): ...                              # one install at a time

A new set is written into a staging folder beside the others, verified and
test-loaded there, then renamed into place, and the link is replaced by
renaming a new link over it (rename(2) is atomic), so the link always
leads to one complete set and no file is changed in place; the daemon is
asked to reload only after the switch.  The
previous ``keep`` sets stay for ``--rollback``; older ones are removed.
An install (fetch to reload) or a rollback holds ``.lock`` in the sets
folder, so a timer's run, ``--watch`` and a run by hand wait for each
other instead of switching under each other's reload.

SECURITY: needs write access to the folder above ``database_dir``; nothing
here follows a name from a manifest outside the staging folder.  A
``database_dir`` that is a real folder (not our link) is refused rather
than moved, since it may be another program's.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from mailwarden.errors import MailwardenError
from mailwarden.update.manifest import Manifest, parse

log = logging.getLogger("mailwarden.update")


class InstallError(MailwardenError):
    """The set cannot be installed or switched to."""


class SetStore:
    def __init__(self, live: Path, *, keep: int = 2) -> None:
        self.live = live
        self.sets = live.with_name(live.name + ".sets")
        self.keep = keep

    def check_live(self) -> None:
        if self.live.exists() and not self.live.is_symlink():
            raise InstallError(
                f"{self.live} is a folder, not the link `mailwarden update` manages; move it "
                "away or name another [update] database_dir"
            )

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the sets for one install or rollback; another one waits until it ends."""
        self.check_live()
        self.sets.mkdir(mode=0o755, parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self.sets / ".lock", flags, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.warning("%s: another update is installing; waiting for it", self.sets)
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """A fresh folder beside the sets; removed on the way out unless installed."""
        self.check_live()
        self.sets.mkdir(mode=0o755, parents=True, exist_ok=True)
        folder = self.sets / f".staging-{secrets.token_hex(6)}"
        folder.mkdir(mode=0o755)
        try:
            yield folder
        finally:
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)

    def install(self, staging: Path, manifest_text: bytes, manifest: Manifest) -> str:
        """Rename a verified staging folder into place; returns the set's name."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(manifest.created))
        name = f"{stamp}-{manifest.digest[:12]}"
        target = self.sets / name
        if target.exists():  # the same set again (after a rollback): reuse it
            return name
        tmp = self.sets / f".{name}.manifest.tmp"
        with open(tmp, "wb") as out:
            out.write(manifest_text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.sets / f"{name}.manifest")
        os.rename(staging, target)
        _fsync_dir(self.sets)
        return name

    def current(self) -> str | None:
        """The name of the set in use, or None before the first install."""
        if not self.live.is_symlink():
            return None
        target = Path(os.readlink(self.live))
        return target.name if (self.sets / target.name).is_dir() else None

    def current_manifest(self) -> tuple[Manifest, bytes] | None:
        name = self.current()
        return self.manifest_of(name) if name else None

    def manifest_of(self, name: str) -> tuple[Manifest, bytes] | None:
        path = self.sets / f"{name}.manifest"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        return parse(data, origin=str(path)), data

    def folder(self, name: str) -> Path:
        return self.sets / name

    def names(self) -> list[str]:
        """Installed sets, oldest first (names start with the creation time)."""
        if not self.sets.is_dir():
            return []
        return sorted(
            p.name for p in self.sets.iterdir() if p.is_dir() and not p.name.startswith(".")
        )

    def switch(self, name: str) -> str | None:
        """Point the link at set ``name`` in one rename; returns the set it replaced."""
        self.check_live()
        if not (self.sets / name).is_dir():
            raise InstallError(f"no installed set {name} in {self.sets}")
        previous = self.current()
        link = self.live.with_name(f".{self.live.name}.{secrets.token_hex(6)}")
        os.symlink(Path(self.sets.name) / name, link)
        try:
            os.replace(link, self.live)
        except OSError:
            link.unlink(missing_ok=True)
            raise
        _fsync_dir(self.live.parent)
        return previous

    def rollback(self) -> str:
        """Switch to the newest set older than the one in use; returns its name."""
        current = self.current()
        older = [n for n in self.names() if current is None or n < current]
        if not older:
            raise InstallError(f"no previous set to roll back to in {self.sets}")
        self.switch(older[-1])
        return older[-1]

    def prune(self) -> list[str]:
        """Remove sets beyond the current one and ``keep`` older ones, and stale staging."""
        current = self.current()
        names = self.names()
        if current in names:
            older = names[: names.index(current)]
            newer = names[names.index(current) + 1 :]
        else:
            older, newer = names, []
        doomed = older[: max(0, len(older) - self.keep)] + newer[self.keep :]
        for name in doomed:
            shutil.rmtree(self.sets / name, ignore_errors=True)
            (self.sets / f"{name}.manifest").unlink(missing_ok=True)
        day_ago = time.time() - 86400
        for stale in self.sets.glob(".staging-*"):
            with contextlib.suppress(OSError):
                if stale.stat().st_mtime < day_ago:
                    shutil.rmtree(stale, ignore_errors=True)
        return doomed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
