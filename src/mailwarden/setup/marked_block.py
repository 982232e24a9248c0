"""Text that setup adds to an MTA's configuration file, between two marker lines.

Sendmail's ``sendmail.mc`` and Exim's ``exim4.conf.template`` are edited by
adding one block, recognisable by its first and last line, so that a second
run finds it (and changes nothing), and a hand-made copy of the same setting
outside it is noticed instead of doubled::

    block = MarkedBlock(begin="dnl # BEGIN mailwarden setup", end="dnl # END mailwarden setup")
    text = block.put(old_text, body, before=re.compile(r"^MAILER"))   # inserted or replaced
    block.find(text)                                                  # the body, or None

SECURITY: pure text handling; reads and writes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailwarden.setup.plan import SetupError


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
