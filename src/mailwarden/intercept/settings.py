"""Settings of the SMTP-speaking agents, from the configuration and command-line flags.

``[smtp_filter]`` and ``[smtp_proxy]`` share their keys (``config/schema.py``
documents them); flags override the common ones::

    settings = SmtpSettings.from_config(config, "smtp_filter",
                                        listen="127.0.0.1:10025", lmtp=True)

Every error is a :class:`~mailwarden.errors.ConfigError` naming the key or the
flag, so the agent stops before it listens.

SECURITY: reads nothing itself; the defaults listen on loopback only and the
daemon socket defaults to the daemon's own configured socket.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Literal

from mailwarden.config import Config
from mailwarden.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Downstream:
    """Where accepted mail goes: an SMTP server or a local Maildir."""

    kind: Literal["smtp", "maildir"]
    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        return f"maildir:{self.path}" if self.kind == "maildir" else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """Everything an SMTP agent needs to start; see the module documentation."""

    listen_host: str
    listen_port: int
    downstream: Downstream
    daemon_socket: str
    hostname: str
    max_message_size: int
    spool_threshold: int
    max_recipients: int
    max_line_length: int
    timeout: float
    downstream_timeout: float
    scan_timeout: float
    max_sessions: int
    lmtp: bool = False
    xforward: bool = True

    @classmethod
    def from_config(
        cls,
        config: Config,
        section: str,
        *,
        listen: str | None = None,
        downstream: str | None = None,
        daemon_socket: str | None = None,
        lmtp: bool | None = None,
        allow_maildir: bool = True,
    ) -> SmtpSettings:
        values = config[section]
        listen_text, listen_key = (
            (listen, "--listen") if listen is not None else (values["listen"], f"{section}.listen")
        )
        host, port = parse_host_port(listen_text, key=listen_key, any_port=True)
        down_text, down_key = (
            (downstream, "--downstream")
            if downstream is not None
            else (values["downstream"], f"{section}.downstream")
        )
        target = parse_downstream(down_text, key=down_key, allow_maildir=allow_maildir)
        sock = daemon_socket if daemon_socket is not None else config["daemon"]["socket"]
        if not sock:
            raise ConfigError(
                "the agent needs the daemon's unix socket", key="--daemon-socket / daemon.socket"
            )
        return cls(
            listen_host=host,
            listen_port=port,
            downstream=target,
            daemon_socket=sock,
            hostname=values["hostname"] or socket.getfqdn(),
            max_message_size=values["max_message_size"],
            spool_threshold=values["spool_threshold"],
            max_recipients=values["max_recipients"],
            max_line_length=values["max_line_length"],
            timeout=values["timeout"],
            downstream_timeout=values["downstream_timeout"],
            scan_timeout=values["scan_timeout"],
            max_sessions=values["max_sessions"],
            lmtp=bool(values.get("lmtp", False)) if lmtp is None else lmtp,
            xforward=bool(values.get("xforward", True)),
        )


def parse_host_port(text: str, *, key: str, any_port: bool = False) -> tuple[str, int]:
    """``127.0.0.1:10025`` or ``[::1]:10025`` -> (host, port); ``any_port``: 0 is allowed
    (the system picks a free port)."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    low = 0 if any_port else 1
    if not sep or not host or not port.isdigit() or not low <= int(port) < 65536:
        raise ConfigError(f"expected HOST:PORT such as 127.0.0.1:10025, got {text!r}", key=key)
    return host, int(port)


def parse_downstream(text: str, *, key: str, allow_maildir: bool = True) -> Downstream:
    """``HOST:PORT`` or ``maildir:PATH``."""
    if text.startswith("maildir:"):
        if not allow_maildir:
            raise ConfigError("this agent relays to an SMTP server: use HOST:PORT", key=key)
        path = text[len("maildir:") :]
        if not path:
            raise ConfigError("maildir: needs a folder, e.g. maildir:/srv/mail", key=key)
        return Downstream("maildir", path=path)
    host, port = parse_host_port(text, key=key)
    return Downstream("smtp", host=host, port=port)
