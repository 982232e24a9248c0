"""What ``mailwarden setup`` will change: the plan every MTA integration returns.

An integration (one module per MTA under ``mailwarden.setup``) looks at the
MTA's configuration and returns a :class:`Plan`; it never writes anything
itself.  The generic machinery shows the plan (unified diffs, commands as they
will run), asks, backs up every file the plan touches, applies it, runs the
MTA's checker, restores everything if the checker fails, and records a
manifest that ``--uninstall`` restores from::

    integration = INTEGRATIONS["postfix"]
    found = integration.detect(ctx)            # None: the MTA is not installed
    plan = integration.plan(ctx, "content-filter")
    for edit in plan.edits: ...                # whole new file text, shown as a diff
    for command in plan.commands: ...          # run after the edits, in order

SECURITY: plans are data.  Commands are argument vectors, never shell text,
and are run without a shell.  Paths come from the integration (the MTA's
configuration folder, possibly redirected with ``--mta-config-dir``), never
from mail or from the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mailwarden.errors import MailwardenError


class SetupError(MailwardenError):
    """Setup cannot go on: the MTA is missing, a file is unreadable, a step failed.

    The message says what happened and what was left in place.
    """


@dataclass(frozen=True, slots=True)
class FileEdit:
    """Replace (or create) ``path`` with ``text``; ``text=None`` removes a file setup created."""

    path: Path
    text: str | None
    #: permission bits for a file the edit creates; an existing file keeps its own
    mode: int = 0o644
    why: str = ""


@dataclass(frozen=True, slots=True)
class Command:
    """One program run after the file edits, without a shell."""

    argv: tuple[str, ...]
    why: str = ""
    #: files the command rewrites (``postconf -e`` rewrites main.cf, m4 writes
    #: sendmail.cf): backed up and recorded in the manifest like edited files
    touches: tuple[Path, ...] = ()
    #: a reload: skipped with a note when the MTA is not running
    needs_running_mta: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything one ``setup --mta M --mode X`` does, in order."""

    mta: str
    mode: str
    edits: tuple[FileEdit, ...] = ()
    #: run in order after the edits (postconf -e/-M, m4, update-exim4.conf)
    commands: tuple[Command, ...] = ()
    #: the MTA's own checker (postfix check, exim -bV, sendmail -bt -d0.1);
    #: a non-zero exit restores every file
    checks: tuple[Command, ...] = ()
    #: run last, after the checks pass, and again after an uninstall restores
    #: the files (systemctl reload postfix, newaliases...)
    reloads: tuple[Command, ...] = ()
    #: mailwarden agents ``serve`` must run for mail to flow (``[serve] agents``)
    agents: tuple[str, ...] = ()
    #: mailwarden.toml settings this mode needs, as {section: {key: value}}
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: lines shown before the question: what the administrator should know
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Detected:
    """An installed MTA: its version (as it reports it) and configuration folder."""

    mta: str
    version: str
    config_dir: Path
    running: bool
    modes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SetupContext:
    """Where to look: the MTA's configuration folder, and how mailwarden is started."""

    #: ``--mta-config-dir``; None: the MTA's system folder
    mta_config_dir: Path | None
    #: the command the MTA runs for mailwarden (``/usr/bin/mailwarden``)
    mailwarden: str
    #: mailwarden's own configuration file that setup edits
    mailwarden_config: Path
    #: programs looked up here first (tests point it at unpacked MTAs)
    path: str | None = None
    #: where manifests and backups live (``--state-dir``); None: beside
    #: ``mta_config_dir`` when given, else /var/lib/mailwarden/setup
    state_dir: Path | None = None
    #: the MTA's listener that receives mail from the Internet, when not its
    #: default (Postfix: the master.cf service, ``smtp`` unless told)
    smtp_service: str | None = None
    #: run ``systemctl`` for mailwarden's own unit; None: when systemd is running
    systemd: bool | None = None


class Integration(Protocol):
    """One MTA: how to find it, which modes it supports, and the plan for each."""

    mta: str
    modes: tuple[str, ...]

    def detect(self, ctx: SetupContext) -> Detected | None:
        """The installed MTA, or None when it is not installed."""
        ...

    def plan(self, ctx: SetupContext, mode: str) -> Plan:
        """The changes that install ``mode``; raise ``SetupError`` when it cannot."""
        ...
