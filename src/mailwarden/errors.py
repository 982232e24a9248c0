"""Exception hierarchy shared by every subsystem.

Callers catch :class:`MailwardenError` at process boundaries (CLI, agents) and
turn it into a clear message or a temporary failure; nothing below that
boundary swallows errors silently.

SECURITY: messages may quote configuration values but never secrets.
"""

from __future__ import annotations


class MailwardenError(Exception):
    """Base class of every error mailwarden raises on purpose."""


class ConfigError(MailwardenError):
    """A configuration problem, located by file, line and key where known."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.detail = message
        where = []
        if file:
            where.append(file if line is None else f"{file}:{line}")
        if key:
            where.append(f"key '{key}'")
        prefix = ": ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class SignatureError(MailwardenError):
    """A signature database could not be loaded; names file and line."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None):
        self.file = file
        self.line = line
        where = file if line is None else f"{file}:{line}"
        super().__init__(f"{where}: {message}" if where else message)


class ScanError(MailwardenError):
    """The engine failed on a message (not the message's fault)."""
