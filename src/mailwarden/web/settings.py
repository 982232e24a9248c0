"""The web interface's settings: the ``[web]`` section plus what it borrows from others.

Usage::

    settings = WebSettings.from_config(config, listen="127.0.0.1:8080")
    settings.host, settings.port, settings.tls

SECURITY: values only.  :meth:`WebSettings.check` refuses to start without
a password hash, and with a listener off loopback without TLS unless the
administrator configured one explicitly (then a warning is logged by the
command).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from mailwarden.config import Config
from mailwarden.errors import ConfigError
from mailwarden.serve.settings import config_error


@dataclass(frozen=True, slots=True)
class WebSettings:
    host: str
    port: int
    username: str
    password_hash: str
    secret_file: str
    session_lifetime: int
    login_attempts: int
    login_window: int
    tls_certificate: str
    tls_key: str
    page_size: int
    dashboard_days: int
    dashboard_max_events: int
    daemon_socket: str
    daemon_timeout: float

    @property
    def tls(self) -> bool:
        return bool(self.tls_certificate)

    @property
    def loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"

    @classmethod
    def from_config(cls, config: Config, *, listen: str | None = None) -> WebSettings:
        w = config["web"]
        host, port = split_listen(listen or w["listen"])
        return cls(
            host=host,
            port=port,
            username=w["username"],
            password_hash=w["password_hash"],
            secret_file=w["secret_file"],
            session_lifetime=w["session_lifetime"],
            login_attempts=w["login_attempts"],
            login_window=w["login_window"],
            tls_certificate=w["tls_certificate"],
            tls_key=w["tls_key"],
            page_size=w["page_size"],
            dashboard_days=w["dashboard_days"],
            dashboard_max_events=w["dashboard_max_events"],
            daemon_socket=w["daemon_socket"] or config["daemon"]["socket"],
            daemon_timeout=float(config["metrics"]["daemon_timeout"]),
        )

    def check(self, config: Config) -> None:
        """ConfigError (with file and line) for settings the interface cannot start with."""
        if not self.password_hash:
            raise config_error(
                config,
                "web",
                "password_hash",
                "no password is set: run `mailwarden web passwd` and put its output here",
            )
        if bool(self.tls_certificate) != bool(self.tls_key):
            key = "tls_key" if self.tls_certificate else "tls_certificate"
            raise config_error(
                config, "web", key, "tls_certificate and tls_key are set together or not at all"
            )


def split_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8025`` for IPv6) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"expected HOST:PORT such as 127.0.0.1:8025, got {text!r}")
    return host, int(port)
