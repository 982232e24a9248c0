"""Policy rules: the ``[policy]``, ``[headers]`` and ``[network]`` settings,
compiled once into a :class:`Policy` that answers "which action for this
category, direction, sender and recipient?".

Agents compile at start-up and on reload, then call ``decide`` with the
compiled policy; ``decide`` also accepts a raw :class:`Config` and compiles it.

Precedence for one category, most specific first (docs/policy.md):

1. an override whose ``recipients`` or ``senders`` list holds the address;
2. an override whose list holds the address's domain: ``example.org`` before
   ``.example.org``, a deeper ``.sub.example.org`` before a shallower one;
3. ``[policy] inbound_<category>`` / ``outbound_<category>``;
4. ``[policy] <category>``.

On equal specificity a recipient match wins over a sender match, then the
earlier override in the file.  An override that does not set the category
is skipped for it, so overrides can change one category and leave the rest.

SECURITY: configuration is trusted; addresses compared against it come from
the envelope and are only compared, never interpreted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mailwarden.config import Config
from mailwarden.config.schema import CATEGORIES
from mailwarden.message import Direction
from mailwarden.policy.action import ActionKind
from mailwarden.policy.direction import Network, domain_matches, domain_of, normalize_address

#: How specific a match is; compared as tuples, the higher wins.
_ADDRESS, _DOMAIN, _SUBDOMAINS = 3, 2, 1


@dataclass(frozen=True, slots=True)
class Override:
    """One ``[[policy.override]]`` table; ``number`` counts from 1 in file order."""

    number: int
    recipients: tuple[str, ...] = ()
    senders: tuple[str, ...] = ()
    actions: tuple[tuple[str, ActionKind], ...] = ()

    def action_for(self, category: str) -> ActionKind | None:
        for cat, kind in self.actions:
            if cat == category:
                return kind
        return None

    def describe(self) -> str:
        who = []
        if self.recipients:
            who.append("recipients " + ", ".join(self.recipients))
        if self.senders:
            who.append("senders " + ", ".join(self.senders))
        what = ", ".join(f"{c} {k.value}" for c, k in self.actions)
        return f"override {self.number} ({'; '.join(who)}): {what}"


@dataclass(frozen=True, slots=True)
class Policy:
    """Compiled policy settings; build with :meth:`from_config`."""

    categories: dict[str, ActionKind]
    directions: dict[tuple[Direction, str], ActionKind] = field(default_factory=dict)
    overrides: tuple[Override, ...] = ()
    after_queue_reject: str = "quarantine"
    keep_rejected: bool = False
    add_headers: bool = True
    strip_incoming: bool = True
    subject_tags: dict[str, str] = field(default_factory=dict)
    network: Network = field(default_factory=Network)

    @classmethod
    def from_config(cls, config: Config) -> Policy:
        pol: dict[str, Any] = config["policy"]
        hdr: dict[str, Any] = config["headers"]
        directions = {
            (d, c): ActionKind(pol[f"{d.value}_{c}"])
            for d in (Direction.INBOUND, Direction.OUTBOUND)
            for c in CATEGORIES
            if pol[f"{d.value}_{c}"]
        }
        overrides = tuple(_override(n, t) for n, t in enumerate(pol["override"], 1))
        return cls(
            categories={c: ActionKind(pol[c]) for c in CATEGORIES},
            directions=directions,
            overrides=overrides,
            after_queue_reject=str(pol["after_queue_reject"]),
            keep_rejected=bool(pol["keep_rejected"]),
            add_headers=bool(hdr["add"]),
            strip_incoming=bool(hdr["strip_incoming"]),
            subject_tags={c: str(hdr[f"subject_tag_{c}"]) for c in CATEGORIES},
            network=Network.from_values(config["network"]),
        )

    def lookup(
        self, category: str, direction: Direction, sender: str, recipient: str | None
    ) -> tuple[ActionKind, str]:
        """The action for ``category`` and the name of the setting that chose it."""
        best: tuple[tuple[int, int, int, int], Override, ActionKind, str] | None = None
        for override in self.overrides:
            kind = override.action_for(category)
            if kind is None:
                continue
            for is_rcpt, address, patterns in (
                (1, recipient, override.recipients),
                (0, sender, override.senders),
            ):
                if not address:
                    continue
                for pattern in patterns:
                    score = _specificity(address, pattern)
                    if score is None:
                        continue
                    # earlier overrides win ties: a negated number sorts them higher
                    key = (score[0], score[1], is_rcpt, -override.number)
                    if best is None or key > best[0]:
                        role = "recipient" if is_rcpt else "sender"
                        best = (key, override, kind, f"{role} {pattern}")
        if best is not None:
            return best[2], f"policy.override[{best[1].number}] ({best[3]})"
        kind = self.directions.get((direction, category))
        if kind is not None:
            return kind, f"policy.{direction.value}_{category}"
        return self.categories[category], f"policy.{category}"


def _override(number: int, table: dict[str, Any]) -> Override:
    return Override(
        number=number,
        recipients=tuple(p.lower() for p in table.get("recipients", ())),
        senders=tuple(p.lower() for p in table.get("senders", ())),
        actions=tuple((c, ActionKind(table[c])) for c in CATEGORIES if c in table),
    )


def _specificity(address: str, pattern: str) -> tuple[int, int] | None:
    """How well ``pattern`` matches ``address``: (kind, depth), or None."""
    addr = normalize_address(address)
    if "@" in pattern:
        return (_ADDRESS, 0) if addr == pattern else None
    domain = domain_of(addr)
    if not domain or not domain_matches(domain, pattern):
        return None
    if pattern.startswith("."):
        return (_SUBDOMAINS, pattern.count("."))
    return (_DOMAIN, 0)
