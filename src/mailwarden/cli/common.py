"""Helpers shared by the subcommands: config loading, engine settings from flags,
and the error boundary that turns exceptions into one clear line and an exit code.

SECURITY: see each subcommand; this module only reads configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from mailwarden.config import DEFAULT_PATH, ENV_VAR, Config, load_config
from mailwarden.engine import EngineSettings

CONFIG_HELP = (
    f"configuration file (default: ${ENV_VAR}, else {DEFAULT_PATH}; "
    "conf.d/*.toml beside it is read after it)"
)


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", metavar="FILE", help=CONFIG_HELP)


def add_database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-d",
        "--database",
        metavar="PATH",
        action="append",
        default=[],
        help="signature file or folder to load; repeatable; added to the configured ones",
    )
    parser.add_argument(
        "--no-default-database",
        action="store_true",
        help="load neither the configured databases nor the bundled set, only --database",
    )


def config_from_args(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None))


def engine_settings(args: argparse.Namespace, config: Config) -> EngineSettings:
    settings = EngineSettings.from_config(config)
    extra = tuple(Path(p) for p in getattr(args, "database", []) or [])
    if getattr(args, "no_default_database", False):
        settings = dataclasses.replace(settings, databases=extra, bundled=False)
    elif extra:
        settings = dataclasses.replace(settings, databases=settings.databases + extra)
    if getattr(args, "all_match", False):
        settings = dataclasses.replace(settings, all_matches=True)
    return settings


def fail(message: str, code: int = 2) -> int:
    print(f"mailwarden: {message}", file=sys.stderr)
    return code
