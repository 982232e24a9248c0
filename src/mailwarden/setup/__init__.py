"""``mailwarden setup``: install and uninstall the MTA integration.

One module per MTA (``postfix``, ``sendmail``, ``exim``, ``qmail``,
``zmailer``) exposes ``INTEGRATION``, an :class:`Integration` that detects
the MTA and returns a :class:`Plan` for a mode; the generic machinery in
``apply`` shows, asks, backs up, applies, checks and undoes::

    from mailwarden.setup import INTEGRATIONS, SetupContext, apply, uninstall, status

    ctx = SetupContext(mta_config_dir=Path("/tmp/etc-postfix"), mailwarden="/usr/bin/mailwarden",
                       mailwarden_config=Path("/etc/mailwarden/mailwarden.toml"))
    integration = INTEGRATIONS["postfix"]     # SetupError when its module is missing
    found = integration.detect(ctx)           # Detected or None (not installed)
    plan = integration.plan(ctx, "milter")
    apply(plan, ctx, ask=None, out=print)     # ask=None: --yes
    uninstall(ctx, "postfix", ask=None, out=print)
    status(ctx)                               # [(Manifest, [FileState])]

``INTEGRATIONS`` imports an MTA's module the first time it is asked for;
``available()`` lists every MTA with its integration or the reason it is not
available.  The manifest format and where it is kept: ``manifest``.

SECURITY: see ``plan`` (plans are data; commands run without a shell) and
``apply`` (backups before any change; needs write access to the MTA's
configuration, usually root).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from mailwarden.setup.apply import FileState, SetupCancelled, apply, recover, status, uninstall
from mailwarden.setup.manifest import Manifest, state_dir
from mailwarden.setup.plan import (
    Command,
    Detected,
    FileEdit,
    Integration,
    Plan,
    SetupContext,
    SetupError,
)

#: every MTA setup knows, in the order the interactive menu lists them
MTAS: tuple[str, ...] = ("postfix", "sendmail", "exim", "qmail", "zmailer")


class _Registry(Mapping[str, Integration]):
    """MTA name -> its integration, imported on first use."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self._names = names
        self._loaded: dict[str, Integration] = {}

    def __getitem__(self, name: str) -> Integration:
        if name not in self._names:
            raise KeyError(name)
        if name not in self._loaded:
            try:
                module = importlib.import_module(f"mailwarden.setup.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"mailwarden.setup.{name}":
                    raise
                raise SetupError(f"{name}: not available in this version of mailwarden") from exc
            integration: Integration = module.INTEGRATION
            self._loaded[name] = integration
        return self._loaded[name]

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


INTEGRATIONS: Mapping[str, Integration] = _Registry(MTAS)


def available() -> dict[str, Integration | str]:
    """Each MTA's integration, or why it is not available."""
    result: dict[str, Integration | str] = {}
    for name in MTAS:
        try:
            result[name] = INTEGRATIONS[name]
        except SetupError as exc:
            result[name] = str(exc)
    return result


__all__ = [
    "INTEGRATIONS",
    "MTAS",
    "Command",
    "Detected",
    "FileEdit",
    "FileState",
    "Integration",
    "Manifest",
    "Plan",
    "SetupCancelled",
    "SetupContext",
    "SetupError",
    "apply",
    "available",
    "recover",
    "state_dir",
    "status",
    "uninstall",
]
