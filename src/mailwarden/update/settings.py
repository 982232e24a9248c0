"""Update settings: the ``[update]`` section plus what it needs of the others.

Usage::

    settings = UpdateSettings.from_config(config)
    key = settings.load_key()          # None when no key_file is set

SECURITY: the key file must be 0600 (or 0400) and owned by whoever runs
``update``; a readable one is refused, as is a short one.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from mailwarden.config import Config
from mailwarden.errors import ConfigError

MIN_KEY = 32


@dataclass(frozen=True, slots=True)
class UpdateSettings:
    source: str
    database_dir: Path
    keep: int = 2
    key_file: Path | None = None
    ca_file: Path | None = None
    timeout: float = 60.0
    max_file_size: int = 1024 * 1024 * 1024
    reload: bool = True
    reload_timeout: float = 600.0
    watch_dir: Path = Path("/var/lib/clamav")
    watch_interval: float = 30.0
    mirror_listen: str = "127.0.0.1:8026"
    daemon_socket: str = ""
    daemon_pid_file: str = ""

    @classmethod
    def from_config(cls, config: Config) -> UpdateSettings:
        sec = config["update"]
        return cls(
            source=str(sec["source"]),
            database_dir=Path(sec["database_dir"]),
            keep=int(sec["keep"]),
            key_file=Path(sec["key_file"]) if sec["key_file"] else None,
            ca_file=Path(sec["ca_file"]) if sec["ca_file"] else None,
            timeout=float(sec["timeout"]),
            max_file_size=int(sec["max_file_size"]),
            reload=bool(sec["reload"]),
            reload_timeout=float(sec["reload_timeout"]),
            watch_dir=Path(sec["watch_dir"]),
            watch_interval=float(sec["watch_interval"]),
            mirror_listen=str(sec["mirror_listen"]),
            daemon_socket=str(config["daemon"]["socket"]),
            daemon_pid_file=str(config["daemon"]["pid_file"]),
        )

    def load_key(self) -> bytes | None:
        """The manifest key, or None; raises ConfigError for a missing or open file."""
        if self.key_file is None:
            return None
        path = self.key_file
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from exc
        with os.fdopen(fd, "rb") as src:
            if stat.S_IMODE(os.fstat(src.fileno()).st_mode) & 0o077:
                raise ConfigError(f"readable by others; chmod 600 {path}", file=str(path))
            key = src.read(4096).strip()
        if len(key) < MIN_KEY:
            raise ConfigError(f"too short (at least {MIN_KEY} characters)", file=str(path))
        return key
