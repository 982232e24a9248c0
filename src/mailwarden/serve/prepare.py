"""What serve does as root before it drops privileges: make the folders its
children write to, owned by the user they will run as.

Usage::

    target = runs_as(config, settings)        # ConfigError for an unknown user
    for line in prepare_folders(config, identity): log.info(line)
    drop_privileges(identity)

The folders are those of the daemon's socket and pid file, the signature
cache, the store's database and quarantine spool, and with update-watch
the one that holds ``[update] database_dir``.  Under systemd the
units' RuntimeDirectory=, StateDirectory= and CacheDirectory= do the same,
and serve then runs as that user and this step does nothing.

SECURITY: only folders that do not exist yet are created (mode 0750) and
handed to the user; an existing folder is never chowned or chmodded, so a
configuration that names /tmp or /etc cannot make serve give them away.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from mailwarden.config import Config
from mailwarden.privileges import Identity, configured_identity, must_drop
from mailwarden.serve.settings import ServeSettings


def runs_as(config: Config, settings: ServeSettings) -> Identity:
    """Whom the children run as: ``[serve] user`` when serve is root, else the caller."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        return Identity(me.pw_name, me.pw_uid, os.getegid(), tuple(os.getgroups()), me.pw_dir)
    return configured_identity(config)


def folders(config: Config) -> list[Path]:
    """The folders the daemon and the agents need to write to."""
    paths = [
        Path(config["daemon"]["socket"]).parent if config["daemon"]["socket"] else None,
        Path(config["daemon"]["pid_file"]).parent if config["daemon"]["pid_file"] else None,
        Path(config["engine"]["cache_dir"]) if config["engine"]["cache_dir"] else None,
        Path(config["store"]["database"]).parent,
        Path(config["store"]["spool_dir"]).parent,
        # update-watch makes the sets folder and switches the link in there
        Path(config["update"]["database_dir"]).parent
        if "update-watch" in config["serve"]["agents"]
        else None,
    ]
    unique: list[Path] = []
    for path in paths:
        if path is not None and path not in unique:
            unique.append(path)
    return unique


def prepare_folders(config: Config, target: Identity) -> list[str]:
    """Create the missing folders for ``target``; what was done, one line each."""
    if not must_drop(target):
        return []
    done = []
    for path in folders(config):
        if path.exists():
            continue
        path.mkdir(mode=0o750, parents=True)
        os.chown(path, target.uid, target.gid)
        done.append(f"created {path} for {target.user}")
    return done
