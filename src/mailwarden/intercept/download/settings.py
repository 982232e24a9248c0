"""Settings of the download proxies (``[pop3_proxy]``, ``[imap_proxy]``) and their flags.

::

    settings = ProxySettings.from_config(config, "pop3_proxy", listen="127.0.0.1:1110",
                                         server="mail.example.org:110")

Flags override the section's keys; every problem is a
:class:`~mailwarden.errors.ConfigError` naming the key or the flag, so the
proxy stops before it listens.

SECURITY: reads nothing but the configuration.  The defaults listen on
loopback only; TLS to the server is verified (against ``server_ca_file`` or
the system's CAs) whenever it is used, and there is no switch to turn the
verification off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mailwarden.config import Config
from mailwarden.errors import ConfigError
from mailwarden.intercept.settings import parse_host_port

ServerTls = Literal["none", "starttls", "tls"]
OnFailure = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """Everything a download proxy needs to start; see the module documentation."""

    section: str
    listen_host: str
    listen_port: int
    #: the implicit-TLS listener, used only with a certificate (None: none)
    listen_tls: tuple[str, int] | None
    server_host: str
    server_port: int
    server_tls: ServerTls
    server_ca_file: str
    server_name: str
    tls_cert: str
    tls_key: str
    daemon_socket: str
    hostname: str
    scan_timeout: float
    timeout: float
    server_timeout: float
    max_message_size: int
    max_sessions: int
    on_failure: OnFailure
    infected_original: str
    cache_entries: int
    #: connect to where a REDIRECTed client meant to go (SO_ORIGINAL_DST)
    transparent: bool = False

    @property
    def client_tls(self) -> bool:
        return bool(self.tls_cert)

    @classmethod
    def from_config(
        cls,
        config: Config,
        section: str,
        *,
        listen: str | None = None,
        server: str | None = None,
        daemon_socket: str | None = None,
    ) -> ProxySettings:
        values = config[section]
        host, port = parse_host_port(
            listen if listen is not None else values["listen"],
            key="--listen" if listen is not None else f"{section}.listen",
            any_port=True,
        )
        s_host, s_port = parse_host_port(
            server if server is not None else values["server"],
            key="--server" if server is not None else f"{section}.server",
        )
        cert, key = values["tls_cert"], values["tls_key"]
        if bool(cert) != bool(key):
            raise ConfigError("set both tls_cert and tls_key, or neither", key=f"{section}.tls_key")
        listen_tls = None
        if cert and values["listen_tls"]:
            listen_tls = parse_host_port(
                values["listen_tls"], key=f"{section}.listen_tls", any_port=True
            )
        sock = daemon_socket if daemon_socket is not None else config["daemon"]["socket"]
        if not sock:
            raise ConfigError(
                "the proxy needs the daemon's unix socket", key="--daemon-socket / daemon.socket"
            )
        return cls(
            section=section,
            listen_host=host,
            listen_port=port,
            listen_tls=listen_tls,
            server_host=s_host,
            server_port=s_port,
            server_tls=values["server_tls"],
            server_ca_file=values["server_ca_file"],
            server_name=values["server_name"] or s_host,
            tls_cert=cert,
            tls_key=key,
            daemon_socket=sock,
            hostname=values["hostname"] or "",
            scan_timeout=values["scan_timeout"],
            timeout=values["timeout"],
            server_timeout=values["server_timeout"],
            max_message_size=values["max_message_size"],
            max_sessions=values["max_sessions"],
            on_failure=values["on_failure"],
            infected_original=values["infected_original"],
            cache_entries=values["cache_entries"],
            transparent=values["transparent"],
        )
