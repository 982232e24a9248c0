"""Render the configuration as commented TOML: the documented defaults, or the
effective values with where each came from.

Used by ``mailwarden config defaults`` (whose output is docs/configuration.md's
reference) and ``mailwarden config check``.

SECURITY: prints configuration values, except those the schema marks
``secret`` (such as [web] password_hash): they show as set or empty only.
"""

from __future__ import annotations

import textwrap
from typing import Any

from mailwarden.config.load import Config, defaults
from mailwarden.config.schema import SECTIONS


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def render(config: Config | None = None, *, show_origin: bool = False) -> str:
    cfg = config or defaults()
    out: list[str] = []
    for section in SECTIONS:
        out.extend("# " + line for line in textwrap.wrap(section.doc, 78))
        out.append(f"[{section.name}]")
        for opt in section.options:
            out.extend("# " + line for line in textwrap.wrap(opt.doc, 78))
            if opt.choices:
                out.append("# one of: " + ", ".join(opt.choices))
            value = cfg[section.name][opt.key]
            shown = '"(set, not shown)"' if opt.secret and value else toml_value(value)
            line = f"{opt.key} = {shown}"
            origin = cfg.origins.get((section.name, opt.key))
            if show_origin:
                line += f"    # from {origin}" if origin else "    # default"
            out.append(line)
        out.append("")
    return "\n".join(out)
