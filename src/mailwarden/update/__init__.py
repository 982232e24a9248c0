"""Signature updates: fetch, verify, test-load, switch atomically, reload the daemon.

Public API::

    settings = UpdateSettings.from_config(config)
    result = update_from(config, settings, "https://mirror.example.org/sigs")
    result = update_from_folder(config, settings, Path("/var/lib/clamav"))
    Watcher(config, settings, Path("/var/lib/clamav")).run()
    make_server(SetStore(settings.database_dir), "127.0.0.1:8026").serve_forever()
    SetStore(settings.database_dir).rollback()

Modules: ``manifest`` (the format, its signature), ``source`` (mirror
folder or HTTP(S), verified while streaming), ``install`` (sets on disk,
the atomic switch, rollback), ``reload`` (RELOAD or SIGHUP, then STATS),
``updater`` (one update, and ``--watch``), ``mirror`` (``--serve-mirror``).
docs/update.md is the administrator's guide.

SECURITY: what comes from a mirror is untrusted until every file matches
the manifest (and the manifest its HMAC when a key is configured); a set
the engine cannot load is refused before the switch.  Needs write access
to the folder that holds ``[update] database_dir`` and access to the
daemon's socket; no other privileges.
"""

from mailwarden.update.install import InstallError, SetStore
from mailwarden.update.manifest import MANIFEST_NAME, Manifest, ManifestError
from mailwarden.update.mirror import make_server
from mailwarden.update.reload import ReloadOutcome, reload_daemon
from mailwarden.update.settings import UpdateSettings
from mailwarden.update.source import FetchError
from mailwarden.update.updater import (
    UpdateError,
    UpdateResult,
    Watcher,
    make_manifest,
    update_from,
    update_from_folder,
)

__all__ = [
    "MANIFEST_NAME",
    "FetchError",
    "InstallError",
    "Manifest",
    "ManifestError",
    "ReloadOutcome",
    "SetStore",
    "UpdateError",
    "UpdateResult",
    "UpdateSettings",
    "Watcher",
    "make_manifest",
    "make_server",
    "reload_daemon",
    "update_from",
    "update_from_folder",
]
