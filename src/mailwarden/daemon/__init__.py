"""The scanning daemon: one process owns the signature database; agents and any
clamd client ask it over a socket.

Public API::

    from mailwarden.daemon import DaemonClient, AsyncDaemonClient, DaemonUnavailable
    verdict = DaemonClient("/run/mailwarden/daemon.sock").scan_bytes(raw, envelope)

    from mailwarden.daemon import DaemonSettings, Server, run   # the daemon itself

Layout: ``protocol`` (clamd framing and reply text, no I/O), ``connection``
and ``session`` (one client), ``spool`` (stream data), ``pool`` (generations
of worker processes, queue, timeouts, reload), ``loader`` and ``worker`` (the
processes that hold the database), ``channel`` (frames between them),
``stats``, ``server`` (listeners, signals), ``client`` (for agents).

SECURITY: see each module; in short, the front end trusts nothing a client
sends, holds no database, and runs scans in separate worker processes that
it kills when they overrun their time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mailwarden.daemon.client import (
    DEFAULT_SOCKET,
    AsyncDaemonClient,
    DaemonClient,
    DaemonError,
    DaemonReplyError,
    DaemonUnavailable,
)

if TYPE_CHECKING:
    from mailwarden.daemon.server import DaemonStartError, Server, run, serve
    from mailwarden.daemon.settings import DaemonSettings

__all__ = [
    "DEFAULT_SOCKET",
    "AsyncDaemonClient",
    "DaemonClient",
    "DaemonError",
    "DaemonReplyError",
    "DaemonSettings",
    "DaemonStartError",
    "DaemonUnavailable",
    "Server",
    "run",
    "serve",
]

# Agents import the client only; the server side pulls in the engine, so it
# is loaded on first use.
_LAZY = {
    "DaemonSettings": "mailwarden.daemon.settings",
    "DaemonStartError": "mailwarden.daemon.server",
    "Server": "mailwarden.daemon.server",
    "run": "mailwarden.daemon.server",
    "serve": "mailwarden.daemon.server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
