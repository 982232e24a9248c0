"""Configuration: one TOML file plus ``conf.d/*.toml``, every key documented in
``config/schema.py`` with its single default.

Usage::

    from mailwarden.config import load_config
    config = load_config(args.config)      # raises ConfigError(file, line, key)
    config["limits"]["max_depth"]

SECURITY: see ``load.py``; reading configuration needs read access to
/etc/mailwarden only.
"""

from mailwarden.config.load import (
    DEFAULT_PATH,
    ENV_VAR,
    Config,
    config_files,
    defaults,
    load_config,
    parse_size,
)
from mailwarden.config.render import render
from mailwarden.config.schema import SECTIONS, Option, Section

__all__ = [
    "DEFAULT_PATH",
    "ENV_VAR",
    "SECTIONS",
    "Config",
    "Option",
    "Section",
    "config_files",
    "defaults",
    "load_config",
    "parse_size",
    "render",
]
