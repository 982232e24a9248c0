"""The effective configuration as the web interface shows it: read-only, secrets masked.

Usage::

    for section in effective(config): section.name, section.rows  # (key, value, origin)

SECURITY: every key the schema marks ``secret`` (the password hash) is
shown only as set or not set; paths of key files are shown, their contents
never.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailwarden.config import SECTIONS, Config
from mailwarden.config.render import toml_value

MASK = "(set, not shown)"


@dataclass(frozen=True, slots=True)
class SectionView:
    name: str
    doc: str
    rows: tuple[tuple[str, str, str], ...]


def effective(config: Config) -> list[SectionView]:
    out = []
    for section in SECTIONS:
        rows = []
        for opt in section.options:
            value = config[section.name][opt.key]
            shown = (MASK if value else '""') if opt.secret else toml_value(value)
            rows.append((opt.key, shown, config.origins.get((section.name, opt.key), "default")))
        out.append(SectionView(section.name, section.doc, tuple(rows)))
    return out
