"""The daemon's settings: the ``[daemon]`` section, overridden by command-line flags.

Usage::

    settings = DaemonSettings.from_config(config, engine=engine_settings(args, config))
    settings = dataclasses.replace(settings, socket="/tmp/x.sock", workers=2)

SECURITY: the defaults are the safe ones: a unix socket that only its owner
and group may use, no TCP, path scans limited to what the daemon's user may
read.  A TCP address that is not loopback is allowed but logged as a warning
by the server, because the protocol has no authentication.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from mailwarden.config import Config
from mailwarden.daemon.backend import DEFAULT_FACTORY
from mailwarden.engine import EngineSettings


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    engine: EngineSettings
    socket: str = "/run/mailwarden/daemon.sock"
    socket_mode: int = 0o660
    socket_group: str = "mailwarden"
    #: (host, port), or None for no TCP listener
    tcp: tuple[str, int] | None = None
    workers: int = 0
    queue: int = 64
    max_connections: int = 256
    scan_timeout: float = 120.0
    stream_max_length: int = 64 * 1024 * 1024
    spool_threshold: int = 1024 * 1024
    spool_dir: str = ""
    command_timeout: float = 30.0
    read_timeout: float = 120.0
    idle_timeout: float = 30.0
    path_scans: bool = True
    unscanned_reply: str = "error"
    pid_file: str = "/run/mailwarden/daemon.pid"
    #: which code loads the database in each generation (see backend.py)
    backend_factory: str = DEFAULT_FACTORY

    @classmethod
    def from_config(cls, config: Config, *, engine: EngineSettings) -> DaemonSettings:
        d = config["daemon"]
        return cls(
            engine=engine,
            socket=d["socket"],
            socket_mode=int(d["socket_mode"], 8),
            socket_group=d["socket_group"],
            tcp=parse_host_port(d["tcp"]) if d["tcp"] else None,
            workers=d["workers"],
            queue=d["queue"],
            max_connections=d["max_connections"],
            scan_timeout=d["scan_timeout"],
            stream_max_length=d["stream_max_length"],
            spool_threshold=d["spool_threshold"],
            spool_dir=d["spool_dir"],
            command_timeout=d["command_timeout"],
            read_timeout=d["read_timeout"],
            idle_timeout=d["idle_timeout"],
            path_scans=d["path_scans"],
            unscanned_reply=d["unscanned_reply"],
            pid_file=d["pid_file"],
        )

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1


def parse_host_port(text: str) -> tuple[str, int]:
    """``"127.0.0.1:3310"`` or ``"[::1]:3310"`` -> ``(host, port)``; ValueError otherwise."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:3310, got {text!r}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
