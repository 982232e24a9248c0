"""The Verdict contract: what the engine says about one message.

Every scan path (CLI, daemon, agents) produces a :class:`Verdict`; the policy
reads it and nothing else.  A verdict is plain data: immutable, JSON-friendly
(:meth:`Verdict.to_dict` / :meth:`Verdict.from_dict`) so it crosses the daemon
socket unchanged.

SECURITY: a verdict carries names taken from hostile mail (attachment and
archive member names in ``Finding.part``).  They are display strings only:
nothing may turn them into file-system paths.  :func:`display_name` strips
control characters so they are safe to print and log.
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass, field
from typing import Any


class Status(enum.StrEnum):
    """Overall outcome, ordered from most to least severe by :data:`SEVERITY`."""

    CLEAN = "clean"
    INFECTED = "infected"
    SUSPICIOUS = "suspicious"
    UNSCANNED = "unscanned"
    ERROR = "error"


#: Higher wins when findings and notes are combined into one status.
SEVERITY: dict[Status, int] = {
    Status.CLEAN: 0,
    Status.UNSCANNED: 1,
    Status.ERROR: 2,
    Status.SUSPICIOUS: 3,
    Status.INFECTED: 4,
}


class Category(enum.StrEnum):
    """What a single finding means; heuristics are ``suspicious``."""

    INFECTED = "infected"
    SUSPICIOUS = "suspicious"


@dataclass(frozen=True, slots=True)
class Finding:
    """One match: signature or heuristic ``name`` found in ``part`` by ``engine``.

    ``part`` is a readable path inside the message such as
    ``2/invoice.zip/setup.exe`` (empty for the raw message itself).
    ``engine`` names the backend: ``clamav``, ``yara``, ``heuristics``, ``hash``...
    """

    name: str
    part: str
    engine: str
    category: Category = Category.INFECTED
    #: False for names from unsigned ClamAV databases, which clamd reports
    #: with a ".UNOFFICIAL" suffix; the clamd-compatible protocol needs it
    official: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "part": self.part,
            "engine": self.engine,
            "category": self.category.value,
            "official": self.official,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            name=str(data["name"]),
            part=str(data.get("part", "")),
            engine=str(data.get("engine", "")),
            category=Category(data.get("category", "infected")),
            official=bool(data.get("official", True)),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """The engine's answer for one message.

    ``reason`` says why a message is ``unscanned`` or ``error`` (for instance
    ``encrypted archive`` or ``limit: depth 16 exceeded``); it is ``None`` for
    clean results.  ``timings`` holds named durations in seconds.
    """

    status: Status
    findings: tuple[Finding, ...] = ()
    reason: str | None = None
    size: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str | None:
        """The first finding's name, which clamd-style output reports."""
        return self.findings[0].name if self.findings else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "findings": [f.to_dict() for f in self.findings],
            "reason": self.reason,
            "size": self.size,
            "timings": dict(self.timings),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        return cls(
            status=Status(data["status"]),
            findings=tuple(Finding.from_dict(f) for f in data.get("findings", ())),
            reason=data.get("reason"),
            size=int(data.get("size", 0)),
            timings={str(k): float(v) for k, v in (data.get("timings") or {}).items()},
        )


def display_name(name: str, limit: int = 200) -> str:
    """Make a name from mail safe to print: no control or bidi-override characters."""
    out = []
    for ch in name:
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Zl", "Zp"):
            out.append("?")
        else:
            out.append(ch)
    text = "".join(out)
    return text if len(text) <= limit else text[: limit - 3] + "..."
