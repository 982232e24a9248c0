"""``mailwarden config``: validate a configuration and show its effective values.

SECURITY: reads configuration files only.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from mailwarden.cli.common import add_config_option, config_from_args
from mailwarden.config import render
from mailwarden.policy import Policy, describe

DESCRIPTION = textwrap.dedent(
    """\
    Validate and display the configuration.

      check     read the configuration (the main file, then conf.d/*.toml), report
                the first error with its file, line and key, or print every
                effective value with the file and line it came from, then the
                effective policy: the action per direction and category before
                and after the queue, and the overrides; every notification
                template is parsed and rendered with sample values, so a syntax
                error or an undefined variable is reported with its file and line
      defaults  print every key with its documented default, as a commented
                TOML file to start a configuration from

    exit status: 0 valid, 2 invalid.
    """
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "config",
        help="check the configuration or print the documented defaults",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check",
        help="validate and print the effective configuration",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_option(check)
    check.add_argument("-q", "--quiet", action="store_true", help="print nothing when valid")
    actions.add_parser("defaults", help="print the documented defaults as TOML")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.config_action == "defaults":
        print(render(), end="")
        return 0
    config = config_from_args(args)
    if config["notify"]["enabled"]:
        from mailwarden.notify import TemplateBook

        folder = config["notify"]["template_dir"]
        TemplateBook(Path(folder) if folder else None).check()
    if not args.quiet:
        files = ", ".join(config.files) or "none (embedded defaults)"
        print(f"# configuration files: {files}")
        print(render(config, show_origin=True), end="")
        print(describe(Policy.from_config(config)), end="")
    return 0
