r"""What the Sendmail and Exim integrations share: programs, daemons, values, configuration.

::

    exim = find_program(ctx, "exim4", "exim")      # ctx.path first, then PATH
    program_version([exim, "-bV"], VERSION)        # the pattern's group 1, or None
    pid_running(Path("/run/exim4/exim.pid"))       # is the daemon a pid file names alive?
    safe_value(path, "[daemon] socket")            # or SetupError: no quotes, commas, spaces
    config = mailwarden_config(ctx)                # mailwarden.toml, or the defaults
    active_line(text, r"^\s*av_scanner\s*=", comment="#")   # a setting made already, or None

SECURITY: reads pid files and mailwarden's configuration, looks programs up
on the search path the administrator gave and runs them (no shell) only to
ask their version; writes nothing.  ``safe_value``
keeps values that setup writes into m4 or Exim's configuration from
changing their syntax.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from mailwarden.config import Config, defaults, load_config
from mailwarden.errors import ConfigError
from mailwarden.setup.plan import SetupContext, SetupError

_SEARCH = "/usr/sbin:/usr/bin:/sbin:/bin"


def search_path(ctx: SetupContext) -> str:
    return ":".join(p for p in (ctx.path, os.environ.get("PATH"), _SEARCH) if p)


def find_program(ctx: SetupContext, *names: str, extra: tuple[str, ...] = ()) -> str | None:
    """The first of ``names`` on the search path (``ctx.path`` first), else of ``extra``."""
    path = search_path(ctx)
    for name in names:
        found = shutil.which(name, path=path)
        if found is not None:
            return found
    for candidate in extra:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def pid_running(pid_file: Path) -> bool:
    """True when ``pid_file``'s first line names a process that exists."""
    try:
        first = pid_file.read_text(errors="replace").split("\n", 1)[0].strip()
    except OSError:
        return False
    if not first.isdigit() or int(first) <= 1:
        return False
    try:
        os.kill(int(first), 0)
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def safe_value(value: str, what: str) -> str:
    """A value going inside m4 quotes or an Exim option: no quotes, commas or spaces."""
    if not value or re.search(r"[\s`',\\$\"]", value):
        raise SetupError(
            f"{what} {value!r}: setup writes it into the MTA's configuration and it "
            "may not contain spaces, quotes, commas, backslashes or '$'"
        )
    return value


def program_version(argv: list[str], pattern: re.Pattern[str], timeout: float = 60) -> str | None:
    """The version an MTA program prints (``pattern``'s group 1), None when it says none."""
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = pattern.search(done.stdout + done.stderr)
    return match.group(1) if match else None


def active_line(text: str, pattern: str, *, comment: str) -> str | None:
    """The first line matching ``pattern`` that is not a comment (``comment`` starts those)."""
    for line in text.splitlines():
        if not line.lstrip().startswith(comment) and re.search(pattern, line):
            return line.strip()
    return None


def mailwarden_config(ctx: SetupContext) -> Config:
    """The configuration setup reads ports and sockets from (the defaults without a file)."""
    try:
        return load_config(ctx.mailwarden_config) if ctx.mailwarden_config.exists() else defaults()
    except ConfigError as exc:
        raise SetupError(f"mailwarden's configuration does not load, fix it first: {exc}") from exc
