"""The mailwarden half of a setup: enable the agents a mode needs, and the service.

A plan names the agents ``mailwarden serve`` must run (``Plan.agents``) and
the settings the MTA side relies on (``Plan.settings``).  Setup never rewrites
the administrator's ``mailwarden.toml``: it writes one drop-in,
``conf.d/50-setup.toml`` beside it, read after the main file (see
``config/load.py``), holding ``[serve] agents`` (what was already enabled,
plus the new agents) and the settings.  When the effective configuration
already says all that, there is no edit, which is what makes a second run
"nothing to do".  When the main file does not exist (embedded defaults), a
short one is created, since ``conf.d`` is only read beside a main file.

The service step is ``systemctl enable --now mailwarden`` where systemd runs.

SECURITY: writes only files under mailwarden's configuration folder, through
the plan (shown, approved, backed up); values come from the integration's
plan, never from mail.  The drop-in is 0644 like the main file: it holds no
secrets.
"""

from __future__ import annotations

import os
import shlex
import tomllib
from pathlib import Path
from typing import Any

from mailwarden.config import DEFAULT_PATH, defaults, load_config
from mailwarden.config.render import toml_value
from mailwarden.errors import ConfigError
from mailwarden.setup.plan import Command, FileEdit, Plan, SetupContext, SetupError

DROP_IN = "50-setup.toml"
SERVICE = "mailwarden"

_HEADER = (
    "# Written by `mailwarden setup`; `mailwarden setup --uninstall` restores the\n"
    "# state before it.  Settings here override mailwarden.toml; later conf.d files\n"
    "# override these.\n"
)
_MAIN = (
    "# mailwarden configuration: every key and its default is in\n"
    "# `mailwarden config defaults`; conf.d/*.toml beside this file is read after it.\n"
)


def drop_in_path(ctx: SetupContext) -> Path:
    return ctx.mailwarden_config.parent / "conf.d" / DROP_IN


def mailwarden_edits(plan: Plan, ctx: SetupContext) -> tuple[FileEdit, ...]:
    """The edits that make mailwarden's configuration run what ``plan`` needs."""
    main = ctx.mailwarden_config
    try:
        effective = load_config(main) if main.exists() else defaults()
    except ConfigError as exc:
        raise SetupError(f"mailwarden's configuration does not load, fix it first: {exc}") from exc
    agents = list(effective["serve"]["agents"])
    missing_agents = [a for a in plan.agents if a not in agents]
    changed = {
        section: {k: v for k, v in keys.items() if effective[section].get(k) != v}
        for section, keys in plan.settings.items()
    }
    changed = {s: keys for s, keys in changed.items() if keys}
    if not missing_agents and not changed:
        return ()
    path = drop_in_path(ctx)
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
    return tuple(edits)


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
