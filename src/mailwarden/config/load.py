"""Read, merge and validate the TOML configuration.

Order: the main file (``-c FILE``, else ``$MAILWARDEN_CONFIG``, else
``/etc/mailwarden/mailwarden.toml``), then every ``conf.d/*.toml`` beside it in
name order; later files override earlier ones key by key.  A missing default
file means "embedded defaults"; a missing file that was asked for is an error.

Every error names the file, the line and the key (tomllib reports syntax
errors with a line; for type and range errors we find the key's line ourselves).

SECURITY: configuration is trusted input from the administrator, but it is
parsed strictly: unknown sections and keys are errors (a typo must not silently
fall back to a default), and values are type- and range-checked.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailwarden.config.schema import SECTION_BY_NAME, SECTIONS, Option
from mailwarden.errors import ConfigError

DEFAULT_PATH = Path("/etc/mailwarden/mailwarden.toml")
ENV_VAR = "MAILWARDEN_CONFIG"

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?\s*$", re.IGNORECASE)
_UNITS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}


@dataclass
class Config:
    """Validated settings: ``config["limits"]["max_depth"]``."""

    values: dict[str, dict[str, Any]]
    #: files read, in order
    files: list[str] = field(default_factory=list)
    #: where each non-default value came from: (section, key) -> "file:line"
    origins: dict[tuple[str, str], str] = field(default_factory=dict)

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.values[section]

    def get(self, section: str, key: str) -> Any:
        return self.values[section][key]


def defaults() -> Config:
    return Config({s.name: {o.key: _copy(o.default) for o in s.options} for s in SECTIONS})


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def config_files(path: str | os.PathLike[str] | None = None) -> list[Path]:
    """The files that make up the configuration, in the order they apply."""
    explicit = path is not None or bool(os.environ.get(ENV_VAR))
    main = Path(path) if path is not None else Path(os.environ.get(ENV_VAR) or DEFAULT_PATH)
    if not main.exists():
        if explicit:
            raise ConfigError("configuration file not found", file=str(main))
        return []
    files = [main]
    confd = main.parent / "conf.d"
    if confd.is_dir():
        files.extend(sorted(p for p in confd.glob("*.toml") if p.is_file()))
    return files


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load the configuration; raise :class:`ConfigError` naming file, line and key."""
    config = defaults()
    for file in config_files(path):
        _apply_file(config, file)
    return config


def parse_size(value: Any) -> int:
    """``500000000``, ``"500M"``, ``"16MiB"``, ``"1G"`` -> bytes (k/M/G are powers of 1000)."""
    if isinstance(value, bool):
        raise ValueError("expected a size")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        m = _SIZE.match(value)
        if m:
            base = 1024 if m.group(3) else 1000
            number = float(m.group(1)) * base ** _UNITS[m.group(2).lower()]
            if not math.isfinite(number):
                raise ValueError(f"size too large: {value!r}")
            return int(number)
    raise ValueError(f"expected a size such as 500M or 16MiB, got {value!r}")


def _apply_file(config: Config, file: Path) -> None:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", file=str(file)) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _syntax_line(str(exc))
        raise ConfigError(f"TOML syntax error: {exc}", file=str(file), line=line) from exc
    config.files.append(str(file))
    for section_name, table in data.items():
        section = SECTION_BY_NAME.get(section_name)
        if section is None:
            raise ConfigError(
                f"unknown section [{section_name}] (known: {', '.join(SECTION_BY_NAME)})",
                file=str(file),
                line=_locate(text, section_name, None),
                key=section_name,
            )
        if not isinstance(table, dict):
            raise ConfigError(
                "expected a table",
                file=str(file),
                line=_locate(text, None, section_name),
                key=section_name,
            )
        for key, raw in table.items():
            dotted = f"{section_name}.{key}"
            line = _locate(text, section_name, key)
            opt = section.option(key)
            if opt is None:
                known = ", ".join(o.key for o in section.options)
                raise ConfigError(
                    f"unknown key (known in [{section_name}]: {known})",
                    file=str(file),
                    line=line,
                    key=dotted,
                )
            if opt.kind == "list[table]":
                line = _locate_item(text, dotted, 0, None) or line
            try:
                value = _validate(opt, raw)
            except ValueError as exc:
                raise ConfigError(str(exc), file=str(file), line=line, key=dotted) from exc
            if opt.kind == "list[table]":
                _check_tables(opt, value, text, str(file), dotted, line)
            config.values[section_name][key] = value
            config.origins[(section_name, key)] = f"{file}:{line}" if line else str(file)


def _validate(opt: Option, raw: Any) -> Any:
    value: Any
    if opt.kind == "bool":
        if not isinstance(raw, bool):
            raise ValueError(f"expected true or false, got {raw!r}")
        value = raw
    elif opt.kind == "int":
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ValueError(f"expected a whole number, got {raw!r}")
        value = raw
    elif opt.kind == "float":
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ValueError(f"expected a number, got {raw!r}")
        value = float(raw)
        # TOML spells nan and inf; no time-out, ratio or interval can use them
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {raw!r}")
    elif opt.kind == "size":
        value = parse_size(raw)
    elif opt.kind == "str":
        if not isinstance(raw, str):
            raise ValueError(f"expected a string, got {raw!r}")
        value = raw
    elif opt.kind == "list[table]":
        if not isinstance(raw, list) or not all(isinstance(v, dict) for v in raw):
            raise ValueError(f"expected [[tables]], got {raw!r}")
        # each table is checked on its own by _check_tables, which can locate it
        return [dict(v) for v in raw]
    elif opt.kind == "list[str]":
        if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
            raise ValueError(f"expected a list of strings, got {raw!r}")
        value = list(raw)
    else:  # pragma: no cover - schema bug
        raise ValueError(f"unknown option kind {opt.kind}")
    if opt.minimum is not None and value < opt.minimum:
        raise ValueError(f"must be at least {opt.minimum:g}, got {raw!r}")
    if opt.choices is not None and value not in opt.choices:
        raise ValueError(f"must be one of {', '.join(opt.choices)}; got {raw!r}")
    if opt.check is not None:
        problem = opt.check(value)
        if problem:
            raise ValueError(problem)
    return value


def _check_tables(
    opt: Option, tables: list[dict[str, Any]], text: str, file: str, dotted: str, line: int | None
) -> None:
    """Run ``opt.check`` on each table of a ``list[table]`` option.

    A problem that starts with ``"name: "`` for a key of that table is located
    at that key's line; any other problem at the table's ``[[header]]``.
    """
    if opt.check is None:
        return
    for index, table in enumerate(tables):
        problem = opt.check(table)
        if not problem:
            continue
        head, _, rest = problem.partition(": ")
        subkey = head if rest and head in table else None
        key = f"{dotted}[{index + 1}]" + (f".{subkey}" if subkey else "")
        where = _locate_item(text, dotted, index, subkey) or line
        raise ConfigError(rest if subkey else problem, file=file, line=where, key=key)


def _locate_item(text: str, dotted: str, index: int, key: str | None) -> int | None:
    """Line of the ``index``-th ``[[dotted]]`` header, or of ``key`` inside that table."""
    seen = -1
    inside = False
    for number, line in enumerate(text.splitlines(), 1):
        table = _TABLE.match(line)
        if table:
            name = table.group(1).replace('"', "").replace(" ", "")
            inside = line.lstrip().startswith("[[") and name == dotted
            if inside:
                seen += 1
                if seen == index and key is None:
                    return number
            continue
        m = _KEY.match(line)
        if inside and seen == index and m and m.group(1).strip('"') == key:
            return number
    return None


def _syntax_line(message: str) -> int | None:
    m = re.search(r"line (\d+)", message)
    return int(m.group(1)) if m else None


#: ``[table]`` and ``[[array.of.tables]]`` headers
_TABLE = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"]+)\s*=")


def _locate(text: str, section: str | None, key: str | None) -> int | None:
    """Line number of ``key`` inside ``[section]`` (or of the table header itself)."""
    current: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        table = _TABLE.match(line)
        if table:
            current = table.group(1).replace('"', "").replace(" ", "")
            if key is None and current == section:
                return number
            continue
        m = _KEY.match(line)
        if m and key is not None and current == section and m.group(1).strip('"') == key:
            return number
        if m and section is None and current is None and m.group(1).strip('"') == key:
            return number
    return None
