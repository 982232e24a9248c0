"""Settings of ``mailwarden milter``, from the ``[milter]`` section and command-line flags.

::

    settings = MilterSettings.from_config(config, socket="inet:8890@127.0.0.1")
    settings.listen            # Listen(kind="inet", host="127.0.0.1", port=8890)

The listening socket is written in Sendmail's notation, which Postfix's
``smtpd_milters`` also understands: ``unix:/PATH`` (or ``local:/PATH``),
``inet:PORT@HOST`` and ``inet6:PORT@HOST``; a bare ``/PATH`` is a unix socket.

Every error is a :class:`~mailwarden.errors.ConfigError` naming the key or
flag, so the milter stops before it listens.

SECURITY: reads nothing itself.  The default listener is a unix socket;
an inet listener must be a loopback address unless ``allow_remote`` is set,
because the protocol has no authentication and lets its client learn every
message's verdict.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Literal

from mailwarden.config import Config
from mailwarden.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Listen:
    kind: Literal["unix", "inet"]
    path: str = ""
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        return f"inet:{self.port}@{self.host}"


@dataclass(frozen=True, slots=True)
class MilterSettings:
    """Everything the milter needs to start; see the module documentation."""

    listen: Listen
    socket_mode: int
    daemon_socket: str
    max_message_size: int
    spool_threshold: int
    max_sessions: int
    timeout: float
    scan_timeout: float
    progress_interval: float
    submission_daemons: tuple[str, ...]
    mta_hold: bool

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        socket: str | None = None,
        daemon_socket: str | None = None,
    ) -> MilterSettings:
        values = config["milter"]
        spec, key = (
            (socket, "--socket") if socket is not None else (values["socket"], "milter.socket")
        )
        listen = parse_socket(spec, key=key)
        if listen.kind == "inet" and not values["allow_remote"] and not _loopback(listen.host):
            raise ConfigError(
                f"{listen.host} is not a loopback address; set milter.allow_remote to listen "
                "on it (the milter protocol has no authentication)",
                key=key,
            )
        sock = daemon_socket if daemon_socket is not None else config["daemon"]["socket"]
        if not sock:
            raise ConfigError(
                "the milter needs the daemon's unix socket", key="--daemon-socket / daemon.socket"
            )
        return cls(
            listen=listen,
            socket_mode=int(values["socket_mode"], 8),
            daemon_socket=sock,
            max_message_size=values["max_message_size"],
            spool_threshold=values["spool_threshold"],
            max_sessions=values["max_sessions"],
            timeout=values["timeout"],
            scan_timeout=values["scan_timeout"],
            progress_interval=values["progress_interval"],
            submission_daemons=tuple(values["submission_daemons"]),
            mta_hold=bool(values["mta_hold"]),
        )


def parse_socket(text: str, *, key: str) -> Listen:
    """``unix:/PATH``, ``local:/PATH``, ``/PATH``, ``inet:PORT@HOST``, ``inet6:PORT@HOST``."""
    kind, sep, rest = text.partition(":")
    if not sep and text.startswith("/"):
        kind, rest = "unix", text
    if kind in ("unix", "local"):
        if not rest.startswith("/"):
            raise ConfigError(f"a unix socket needs an absolute path: {text!r}", key=key)
        return Listen("unix", path=rest)
    if kind in ("inet", "inet6"):
        port, _, host = rest.partition("@")
        host = host.strip("[]") or ("127.0.0.1" if kind == "inet" else "::1")
        if not port.isdigit() or not 0 <= int(port) < 65536:
            raise ConfigError(
                f"expected inet:PORT@HOST such as inet:8890@127.0.0.1: {text!r}", key=key
            )
        return Listen("inet", host=host, port=int(port))
    raise ConfigError(
        f"expected unix:PATH or inet:PORT@HOST (Sendmail's notation): {text!r}", key=key
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(
                ipaddress.ip_address(str(info[4][0])).is_loopback
                for info in socket.getaddrinfo(host, None)
            )
        except (OSError, ValueError):
            return False
