"""Notification settings: the ``[notify]`` section, compiled once.

Usage::

    settings = NotifySettings.from_config(config, host="mx1.example.org")
    settings.wants("admin", "infected", "inbound")     # -> True by default

SECURITY: values come from the administrator's configuration only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mailwarden.config import Config

#: Who a notification is for.
ROLES: tuple[str, ...] = ("admin", "recipient", "sender")


@dataclass(frozen=True, slots=True)
class NotifySettings:
    enabled: bool = True
    admin: tuple[str, ...] = ("postmaster",)
    #: role -> (categories, directions) it is told about
    rules: tuple[tuple[str, frozenset[str], frozenset[str]], ...] = (
        ("admin", frozenset({"infected"}), frozenset({"inbound", "outbound", "unknown"})),
        ("recipient", frozenset({"infected", "suspicious", "unscanned"}), frozenset({"inbound"})),
        ("sender", frozenset(), frozenset({"outbound"})),
    )
    from_address: str = "postmaster@localhost"
    envelope_sender: str = ""
    template_dir: Path | None = None
    transport: str = "smtp"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    sendmail: str = "/usr/sbin/sendmail"
    timeout: float = 30.0
    rate_limit: int = 20
    max_pending: int = 1000
    host: str = "localhost"

    @classmethod
    def from_config(cls, config: Config, *, host: str) -> NotifySettings:
        sec = config["notify"]
        smtp_host, _, port = str(sec["smtp"]).rpartition(":")
        folder = str(sec["template_dir"])
        return cls(
            enabled=bool(sec["enabled"]),
            admin=tuple(sec["admin"]),
            rules=tuple(
                (
                    role,
                    frozenset(sec[f"{role}_categories"]),
                    frozenset(sec[f"{role}_directions"]),
                )
                for role in ROLES
            ),
            from_address=str(sec["from_address"]) or f"postmaster@{host}",
            envelope_sender=str(sec["envelope_sender"]),
            template_dir=Path(folder) if folder else None,
            transport=str(sec["transport"]),
            smtp_host=smtp_host.strip("[]"),
            smtp_port=int(port),
            sendmail=str(sec["sendmail"]),
            timeout=float(sec["timeout"]),
            rate_limit=int(sec["rate_limit"]),
            max_pending=int(sec["max_pending"]),
            host=host,
        )

    def wants(self, role: str, category: str, direction: str) -> bool:
        """Whether ``role`` is told about ``category`` mail going ``direction``."""
        for name, categories, directions in self.rules:
            if name == role:
                return category in categories and direction in directions
        return False
