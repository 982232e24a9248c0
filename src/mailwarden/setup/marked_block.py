"""Text that setup adds to an MTA's configuration file, between two marker lines.

Sendmail's ``sendmail.mc`` and Exim's ``exim4.conf.template`` are edited by
adding one block, recognisable by its first and last line, so that a second
run finds it (and changes nothing), and a hand-made copy of the same setting
outside it is noticed instead of doubled::

    block = MarkedBlock(begin="dnl # BEGIN mailwarden setup", end="dnl # END mailwarden setup")
    text = block.put(old_text, body, before=re.compile(r"^MAILER"))   # inserted or replaced
    block.find(text)                                                  # the body, or None

Helpers for the MTA programs the integrations run live here too:
:func:`find_program` (``ctx.path`` first) and :func:`pid_running` (is the
process a pid file names alive?).

SECURITY: pure text handling; reads pid files and looks programs up on the
search path the administrator gave.  Never writes.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from mailwarden.setup.plan import SetupContext, SetupError

_SEARCH = "/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True, slots=True)
class MarkedBlock:
    """A block of lines from ``begin`` (a whole line, maybe followed by text) to ``end``."""

    begin: str
    end: str

    def _span(self, lines: list[str], where: str) -> tuple[int, int] | None:
        starts = [i for i, line in enumerate(lines) if line.startswith(self.begin)]
        if not starts:
            return None
        if len(starts) > 1:
            raise SetupError(f"{where}: more than one {self.begin!r} block; keep one and run again")
        start = starts[0]
        for stop in range(start + 1, len(lines)):
            if lines[stop].rstrip("\n") == self.end:
                return start, stop
        raise SetupError(f"{where}: {self.begin!r} without its {self.end!r} line; fix it by hand")

    def find(self, text: str, where: str = "the file") -> str | None:
        """The lines between the markers (the header line included), or None."""
        lines = text.splitlines(keepends=True)
        span = self._span(lines, where)
        if span is None:
            return None
        return "".join(lines[span[0] : span[1] + 1])

    def put(
        self,
        text: str,
        body: str,
        *,
        before: re.Pattern[str] | None = None,
        after: re.Pattern[str] | None = None,
        where: str = "the file",
    ) -> str:
        """``text`` with the block holding ``body`` (a header line first, then lines).

        An existing block is replaced where it is.  Otherwise the block goes
        before the first line matching ``before``, else after the first line
        matching ``after``, else at the end.
        """
        block = body if body.endswith("\n") else body + "\n"
        if not block.startswith(self.begin) or not block.endswith(self.end + "\n"):
            raise ValueError("the body must start with the begin marker and end with the end one")
        lines = text.splitlines(keepends=True)
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        span = self._span(lines, where)
        if span is not None:
            return "".join([*lines[: span[0]], block, *lines[span[1] + 1 :]])
        index = len(lines)
        if before is not None:
            found = next((i for i, line in enumerate(lines) if before.search(line)), None)
            if found is not None:
                index = found
        if index == len(lines) and after is not None:
            found = next((i for i, line in enumerate(lines) if after.search(line)), None)
            if found is not None:
                index = found + 1
        return "".join([*lines[:index], block, *lines[index:]])


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


def m4_safe(value: str, what: str) -> str:
    """A value going inside m4 quotes or an Exim option: no quotes, commas or spaces."""
    if not value or re.search(r"[\s`',\\$\"]", value):
        raise SetupError(
            f"{what} {value!r}: setup writes it into the MTA's configuration and it "
            "may not contain spaces, quotes, commas, backslashes or '$'"
        )
    return value
