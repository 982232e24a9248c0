"""One update: fetch or collect a set, verify, test-load, switch, reload.

Usage::

    result = update_from(config, settings, "https://mirror.example.org/sigs")
    result = update_from_folder(config, settings, Path("/var/lib/clamav"))  # --watch
    result.state, result.name, result.version, result.reload

Every step can refuse the set; a refused set never touches the one in use
(it lives only in a staging folder that is removed), and the error says
which file and why.  The test load uses the engine's own loader with the
configuration's engine settings, the staged folder standing in for
``database_dir``; it also fills the compiled-database cache, so the
daemon's reload that follows is quick.

SECURITY: see ``source`` (what is trusted of a mirror), ``install`` (the
switch) and ``reload`` (signalling the daemon).  Run it as the daemon's
user, so the cache it writes is the daemon's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mailwarden.config import Config
from mailwarden.errors import MailwardenError
from mailwarden.update.install import SetStore
from mailwarden.update.manifest import Entry, Manifest, render, valid_name
from mailwarden.update.reload import ReloadOutcome, reload_daemon
from mailwarden.update.settings import UpdateSettings
from mailwarden.update.source import copy_verified, fetch

log = logging.getLogger("mailwarden.update")

#: Files a set may hold: what the engine loads (ClamAV databases, YARA rules).
SIGNATURE_EXTS = frozenset(
    {"cvd", "cld", "cud", "hdb", "hsb", "mdb", "msb", "ndb", "ldb", "fp", "sfp", "ign2"}
    | {"yar", "yara"}
)


class UpdateError(MailwardenError):
    """The set was refused; the installed set is unchanged (or switched back)."""


@dataclass(frozen=True, slots=True)
class UpdateResult:
    state: str  # "installed" | "up to date"
    name: str
    version: str = ""
    reload: ReloadOutcome | None = None
    files: int = 0


def update_from(
    config: Config, settings: UpdateSettings, source: str, *, force: bool = False
) -> UpdateResult:
    """Fetch the set at ``source`` (mirror folder or URL) and install it."""
    key = settings.load_key()
    sets = SetStore(settings.database_dir, keep=settings.keep)
    with sets.lock():
        current = sets.current()
        found = sets.manifest_of(current) if current else None
        in_use = (found[0], sets.folder(current)) if found and current else None
        with sets.staging() as folder:
            manifest, text = fetch(source, folder, key=key, settings=settings, in_use=in_use)
            return _install(config, settings, sets, folder, manifest, text, force=force)


def update_from_folder(
    config: Config, settings: UpdateSettings, source: Path, *, force: bool = False
) -> UpdateResult:
    """Install the signature files of a local folder (freshclam's), as they are now."""
    sets = SetStore(settings.database_dir, keep=settings.keep)
    manifest = make_manifest(source)
    text = render(manifest, settings.load_key())
    with sets.lock(), sets.staging() as folder:
        for entry in manifest.files:
            # hashed a moment ago: a file freshclam changes meanwhile no longer matches
            with open(source / entry.name, "rb") as fh:
                copy_verified(fh, folder / entry.name, entry, str(source / entry.name))
        return _install(config, settings, sets, folder, manifest, text, force=force)


def make_manifest(folder: Path, *, created: int | None = None) -> Manifest:
    """A manifest of the signature files in ``folder`` (other files are left out)."""
    entries = []
    try:
        children = sorted(folder.iterdir())
    except OSError as exc:
        raise UpdateError(f"{folder}: {exc.strerror}") from exc
    for path in children:
        ext = path.suffix[1:].lower()
        if ext not in SIGNATURE_EXTS or not path.is_file() or not valid_name(path.name):
            continue
        digest = hashlib.sha256()
        size = 0
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
                size += len(chunk)
        entries.append(Entry(path.name, size, digest.hexdigest()))
    if not entries:
        raise UpdateError(f"{folder}: no signature files")
    return Manifest(int(time.time()) if created is None else created, tuple(entries))


def test_load(config: Config, settings: UpdateSettings, staged: Path) -> str:
    """Load the engine with ``staged`` in place of ``database_dir``; its database version."""
    from mailwarden.engine import Engine, EngineSettings

    engine_settings = EngineSettings.from_config(config)
    live = os.path.abspath(settings.database_dir)
    databases = [staged if os.path.abspath(p) == live else p for p in engine_settings.databases]
    if staged not in databases:
        log.warning(
            "[engine] databases does not name %s: the daemon will not load the new set",
            settings.database_dir,
        )
        databases = [staged]
    try:
        engine = Engine.load(dataclasses.replace(engine_settings, databases=tuple(databases)))
    except Exception as exc:
        raise UpdateError(f"the new set does not load: {exc}") from exc
    return str(engine.version)


def _install(
    config: Config,
    settings: UpdateSettings,
    sets: SetStore,
    staged: Path,
    manifest: Manifest,
    text: bytes,
    *,
    force: bool,
) -> UpdateResult:
    installed = sets.current_manifest()
    current = sets.current()
    if installed is not None and current is not None and installed[0].same_files(manifest):
        return UpdateResult("up to date", current, files=len(manifest.files))
    if installed is not None and manifest.created < installed[0].created and not force:
        raise UpdateError(
            f"the offered set (created {_when(manifest.created)}) is older than the installed "
            f"one ({_when(installed[0].created)}); --force installs it anyway"
        )
    version = test_load(config, settings, staged)
    name = sets.install(staged, text, manifest)
    previous = sets.switch(name)
    log.info("installed signature set %s (%s)", name, version)
    outcome = None
    if settings.reload:
        outcome = reload_for(settings, version)
        if not outcome.ok:
            if previous is not None:
                sets.switch(previous)
            back = f"; switched back to {previous}" if previous else ""
            raise UpdateError(f"the daemon did not load the new set: {outcome.detail}{back}")
    sets.prune()
    return UpdateResult("installed", name, version, outcome, len(manifest.files))


def reload_for(settings: UpdateSettings, version: str | None) -> ReloadOutcome:
    """Make the configured daemon reload; ``version`` is what it should then serve."""
    return reload_daemon(
        settings.daemon_socket,
        settings.daemon_pid_file,
        expect_version=version,
        timeout=settings.reload_timeout,
    )


def _when(stamp: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(stamp))


class Watcher:
    """``--watch``: install a folder's signature files each time they change and settle.

    Call :meth:`step` once per poll (``run`` does, every ``watch_interval``).
    A change is installed once two polls in a row see the same names, sizes
    and modification times, so a set freshclam is still writing is not taken.
    A snapshot that failed to install is not tried again until it changes.
    """

    def __init__(self, config: Config, settings: UpdateSettings, folder: Path) -> None:
        self.config = config
        self.settings = settings
        self.folder = folder
        self._seen: dict[str, tuple[int, int]] | None = None
        self._done: dict[str, tuple[int, int]] | None = None
        self._unreadable = False

    def snapshot(self) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        try:
            children = list(self.folder.iterdir())
        except OSError as exc:
            # said once, not at every look: freshclam may simply not have run yet
            if not self._unreadable:
                log.warning("%s: %s; waiting for it", self.folder, exc.strerror)
            self._unreadable = True
            return out
        self._unreadable = False
        for path in children:
            if path.suffix[1:].lower() in SIGNATURE_EXTS:
                try:
                    st = path.stat()
                except OSError:
                    continue
                out[path.name] = (st.st_size, st.st_mtime_ns)
        return out

    def step(self) -> UpdateResult | None:
        """One poll; the result when a set was installed or found current."""
        snap = self.snapshot()
        if snap != self._seen:
            self._seen = snap
            return None
        if snap == self._done or not snap:
            return None
        try:
            result = update_from_folder(self.config, self.settings, self.folder)
        except UpdateError as exc:
            log.error("%s: %s; the installed set is kept", self.folder, exc)
            self._done = snap
            return None
        # changed while copied, removed meanwhile, a folder it cannot write: the
        # next poll tries again (a watcher must outlive it, under serve too)
        except (MailwardenError, OSError) as exc:
            log.warning("%s: %s; trying again", self.folder, exc)
            self._seen = None
            return None
        self._done = snap
        return result

    def run(
        self,
        *,
        sleep: Callable[[float], None] = time.sleep,
        stop: Callable[[], bool] = lambda: False,
    ) -> None:
        while not stop():
            result = self.step()
            if result is not None and result.state == "installed":
                log.info("%s: installed %s", self.folder, result.name)
            sleep(self.settings.watch_interval)
