"""The mailwarden half of a setup: enable the agents a mode needs, and the service.

A plan names the agents ``mailwarden serve`` must run (``Plan.agents``) and
the settings the MTA side relies on (``Plan.settings``).  Setup never rewrites
the administrator's ``mailwarden.toml``: each MTA's setup writes a drop-in
of its own, ``conf.d/NN-setup-MTA.toml`` beside it, read after the main file
(see ``config/load.py``), holding ``[serve] agents`` (what was already
enabled, plus the new agents) and the settings.  When the effective
configuration already says all that, there is no edit, which is what makes a
second run "nothing to do".  When the main file does not exist (embedded
defaults), a short one is created, since ``conf.d`` is only read beside a
main file.

Why one file per MTA, and why NN: each MTA's manifest records its own file,
so uninstalling one MTA never finds the other's changes in a shared file
(and never asks about them).  A later conf.d file replaces ``[serve]
agents`` as a whole, so the newest setup's file must come last and list
every agent: NN is 50, or one more than the highest setup drop-in already
there, and the list is the effective one plus the new agents.  Undoing the
newest setup then leaves the earlier one's list in force; undoing an earlier
one keeps the later list, which still names the earlier MTA's agents
(:func:`leftover_agents` says so).

``mda`` modes add the resident ``mda-agent`` and the ``[mda]`` settings that
let the MTA's delivery process reach its socket (:func:`mda_agent`).

Where systemd runs, an ``mda`` mode whose socket becomes 0666 in the unit's
``/run/mailwarden`` also gets a drop-in for the unit,
``/etc/systemd/system/mailwarden.service.d/50-setup-MTA.conf``, making that
folder 0751 (searchable by the recipients, not listable); ``apply`` then runs
``systemctl daemon-reload`` before (re)starting the service.

The service step is ``systemctl enable --now mailwarden`` where systemd runs.

SECURITY: writes only files under mailwarden's configuration folder, through
the plan (shown, approved, backed up); values come from the integration's
plan, never from mail.  The drop-in is 0644 like the main file: it holds no
secrets.  An ``mda`` mode for an MTA that delivers as each recipient
(Postfix, qmail) makes the mda agent's socket 0666, so that any local user
may have a message scanned and recorded by the agent (docs/mda.md); the plan
says so before it is applied.
"""

from __future__ import annotations

import grp
import os
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailwarden.config import DEFAULT_PATH, Config, defaults, load_config
from mailwarden.config.render import toml_value
from mailwarden.errors import ConfigError
from mailwarden.setup.plan import Command, FileEdit, Plan, SetupContext, SetupError

#: a setup drop-in: ``NN-setup-MTA.toml`` (``50-setup.toml``: the shared file of earlier versions)
_DROP_IN = re.compile(r"^(\d\d)-setup(?:-([a-z0-9]+))?\.toml$")
FIRST_NUMBER = 50
SERVICE = "mailwarden"
MDA_AGENT = "mda-agent"
#: drop-ins for mailwarden's unit (where ``systemctl edit`` writes them too)
UNIT_DROP_INS = Path("/etc/systemd/system") / f"{SERVICE}.service.d"
#: the unit's RuntimeDirectory=, 0750 in the unit
RUNTIME_DIR = Path("/run/mailwarden")

_HEADER = (
    "# Written by `mailwarden setup`; `mailwarden setup --uninstall` restores the\n"
    "# state before it.  Settings here override mailwarden.toml; later conf.d files\n"
    "# override these.\n"
)
_MAIN = (
    "# mailwarden configuration: every key and its default is in\n"
    "# `mailwarden config defaults`; conf.d/*.toml beside this file is read after it.\n"
)


def drop_in_path(ctx: SetupContext, mta: str) -> Path:
    """``mta``'s own drop-in: the one it has, else a name after every other setup's."""
    folder = ctx.mailwarden_config.parent / "conf.d"
    numbers = []
    try:
        names = sorted(p.name for p in folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        names = []
    except OSError as exc:
        raise SetupError(f"{folder}: cannot read: {exc.strerror or exc}") from exc
    for name in names:
        found = _DROP_IN.match(name)
        if found is None:
            continue
        if found.group(2) == mta:
            return folder / name
        numbers.append(int(found.group(1)))
    number = max([FIRST_NUMBER - 1, *numbers]) + 1
    if number > 99:
        raise SetupError(f"{folder}: no setup drop-in number left after {max(numbers)}")
    return folder / f"{number:02d}-setup-{mta}.toml"


def mailwarden_edits(plan: Plan, ctx: SetupContext) -> tuple[FileEdit, ...]:
    """The edits that make mailwarden's configuration run what ``plan`` needs."""
    main = ctx.mailwarden_config
    try:
        effective = load_config(main) if main.exists() else defaults()
    except ConfigError as exc:
        raise SetupError(f"mailwarden's configuration does not load, fix it first: {exc}") from exc
    units = _unit_edits(plan, ctx, effective)
    agents = list(effective["serve"]["agents"])
    missing_agents = [a for a in plan.agents if a not in agents]
    changed = {
        section: {k: v for k, v in keys.items() if effective[section].get(k) != v}
        for section, keys in plan.settings.items()
    }
    changed = {s: keys for s, keys in changed.items() if keys}
    if not missing_agents and not changed:
        return units
    path = drop_in_path(ctx, plan.mta)
    current = _read_toml(path)
    if missing_agents:
        current.setdefault("serve", {})["agents"] = agents + missing_agents
    for section, keys in changed.items():
        current.setdefault(section, {}).update(keys)
    edits = []
    if not main.exists():
        edits.append(FileEdit(main, _MAIN, mode=0o644, why="conf.d is read beside a main file"))
    edits.append(
        FileEdit(path, _HEADER + _render(current), mode=0o644, why="enable the agents setup needs")
    )
    return (*edits, *units)


def _unit_edits(plan: Plan, ctx: SetupContext, effective: Config) -> tuple[FileEdit, ...]:
    """A 0666 mda socket in the unit's runtime folder: every user must be able to search it.

    The unit creates /run/mailwarden 0750 (RuntimeDirectoryMode=); a drop-in
    of this MTA's own makes it 0751, searchable but not listable by others.
    The daemon's socket in there keeps its own 0660.
    """
    if MDA_AGENT not in plan.agents or not systemd_running(ctx):
        return ()
    mode = plan.settings.get("mda", {}).get(
        "agent_socket_mode", effective["mda"]["agent_socket_mode"]
    )
    if mode != "0666" or Path(str(effective["mda"]["agent_socket"])).parent != RUNTIME_DIR:
        return ()
    text = (
        f"# Written by `mailwarden setup` ({plan.mta}, mode {plan.mode}); `mailwarden setup\n"
        "# --uninstall` removes it.  The MTA runs `mailwarden mda` as each recipient, who\n"
        f"# must reach the mda agent's socket (0666) in {RUNTIME_DIR}.\n"
        "[Service]\n"
        "RuntimeDirectoryMode=0751\n"
    )
    path = UNIT_DROP_INS / f"50-setup-{plan.mta}.conf"
    return (FileEdit(path, text, mode=0o644, why=f"every recipient may search {RUNTIME_DIR}"),)


def is_unit_file(path: Path | str) -> bool:
    """Whether ``path`` is one of setup's drop-ins for mailwarden's unit (daemon-reload)."""
    return Path(path).parent == UNIT_DROP_INS


@dataclass(frozen=True, slots=True)
class MdaAgent:
    """What an ``mda`` mode adds on mailwarden's side (see :func:`mda_agent`)."""

    agents: tuple[str, ...]
    settings: dict[str, dict[str, object]]
    notes: tuple[str, ...]
    #: the group the MTA's delivery process must run with (Exim's ``group =``); None: none
    group: str | None = None


def mda_agent(config: Config, reach: str) -> MdaAgent:
    """The ``mda-agent`` and the ``[mda]`` settings that let the MTA's delivery reach it.

    ``reach`` is how the MTA runs ``mailwarden mda`` (docs/mda.md, "Identity
    and the store"):

    * ``"any-user"``: as each recipient with their primary group only
      (Postfix's local(8), qmail-local): no group can cover them all, so the
      socket is ``0666``;
    * ``"group"``: as a user whose group the MTA sets (Exim's pipe transport
      ``group =``): the socket keeps ``agent_socket_mode`` and the MTA runs
      the delivery with ``agent_socket_group``;
    * ``"root"``: as root (Sendmail's local mailer with ``S``), which may connect anyway.

    Every mode sets ``agent = "require"``: the store becomes the agent's, so
    a delivery scanning in its own process could not write it; while the
    agent is down the mail waits in the MTA's queue.
    """
    mda = config["mda"]
    group = str(mda["agent_socket_group"])
    settings: dict[str, object] = {"agent": "require"}
    notes = [
        f"deliveries go through the mda agent ([serve] agents) on {mda['agent_socket']}, "
        "which alone writes the store; while it is not running the mail waits in the "
        'queue ([mda] agent = "require")'
    ]
    needs_group: str | None = None
    if reach == "group" and not group:
        reach = "any-user"  # the agent's own primary group: the MTA cannot be told it
    if reach == "any-user":
        settings["agent_socket_mode"] = "0666"
        notes.append(
            "the MTA runs the delivery as each recipient with their primary group only: the "
            "agent's socket is 0666 ([mda] agent_socket_mode)"
        )
        notes += _folder_notes(Path(str(mda["agent_socket"])).parent)
    elif reach == "group":
        needs_group = group
        try:
            grp.getgrnam(group)
        except KeyError as exc:
            raise SetupError(
                f"[mda] agent_socket_group {group!r} does not exist on this host: create it "
                "(groupadd --system) or name another; the MTA's delivery runs with that group"
            ) from exc
    if reach != "group" and group and _no_group(group):
        notes.append(
            f"the group {group!r} ([mda] agent_socket_group) does not exist: the agent cannot "
            "create its socket until it does"
        )
    return MdaAgent((MDA_AGENT,), {"mda": settings}, tuple(notes), needs_group)


def _no_group(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return True
    return False


def _folder_notes(folder: Path) -> list[str]:
    """Every delivering user must be able to search the socket's folders."""
    closed = []
    for path in (folder, *folder.parents):
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            closed.append(f"{path} (not created yet)")
            continue
        except OSError:
            continue
        if not mode & 0o001:
            closed.append(str(path))
    if not closed:
        return []
    return [
        f"every recipient must reach the socket: make {', '.join(closed)} searchable by "
        f"others (chmod o+x), or name another folder in [mda] agent_socket; for {RUNTIME_DIR} "
        "under systemd, setup sets RuntimeDirectoryMode=0751 for the mailwarden unit"
    ]


def leftover_agents(ctx: SetupContext, agents: list[str]) -> str | None:
    """After an uninstall: which of ``agents`` another setup's drop-in still enables."""
    main = ctx.mailwarden_config
    try:
        effective = load_config(main) if main.exists() else defaults()
    except ConfigError:
        return None
    still = [a for a in agents if a in effective["serve"]["agents"]]
    origin = effective.origins.get(("serve", "agents"), "")
    name = Path(origin.rsplit(":", 1)[0]).name
    if not still or _DROP_IN.match(name) is None:
        return None
    return (
        f"[serve] agents in {origin.rsplit(':', 1)[0]} (written by another MTA's setup) still "
        f"names {', '.join(still)}; remove it there if nothing else needs it"
    )


def _read_toml(path: Path) -> dict[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise SetupError(f"{path}: cannot read: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SetupError(f"{path}: not valid TOML ({exc}); fix or remove it first") from exc
    return {k: dict(v) for k, v in data.items() if isinstance(v, dict)}


def _render(data: dict[str, dict[str, Any]]) -> str:
    blocks = []
    for section, keys in data.items():
        lines = [f"[{section}]"]
        lines.extend(f"{k} = {toml_value(v)}" for k, v in keys.items())
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def command_line(ctx: SetupContext, verb: str) -> str:
    """``mailwarden VERB`` as shell text for the MTA to run, with ``-c`` when the
    configuration is not the default one."""
    words = [ctx.mailwarden, verb]
    if ctx.mailwarden_config != DEFAULT_PATH:
        words += ["-c", str(ctx.mailwarden_config)]
    return shlex.join(words)


def wrapper_script(ctx: SetupContext, verb: str, *args: str) -> str:
    """A two-line ``/bin/sh`` script that runs ``mailwarden VERB ARGS`` in its place
    (for MTAs that start a program by path, without arguments)."""
    line = command_line(ctx, verb) + "".join(" " + shlex.quote(a) for a in args)
    return f"#!/bin/sh\n# written by `mailwarden setup`\nexec {line}\n"


def systemd_running(ctx: SetupContext) -> bool:
    """True when this host's systemd is the init (and ``ctx`` does not say otherwise)."""
    if ctx.systemd is not None:
        return ctx.systemd
    return os.path.isdir("/run/systemd/system")


def service_enable() -> Command:
    return Command(
        ("systemctl", "enable", "--now", SERVICE),
        why="start mailwarden (daemon and agents) now and at boot",
    )


def service_disable() -> Command:
    return Command(("systemctl", "disable", "--now", SERVICE), why="setup enabled it")
