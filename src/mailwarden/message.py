"""The Message contract: one mail as an interception agent hands it on.

A :class:`Message` is the raw bytes plus the envelope the agent learned from
its MTA or client.  Agents build one; the daemon scans ``raw``; the policy
reads the envelope (direction, recipients) to choose an action.

SECURITY: everything here comes from the network and is untrusted.  The
envelope is used for policy lookups and logging only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    UNKNOWN = "unknown"


class Point(enum.StrEnum):
    """Interception point (see docs/design.md)."""

    MTA = "S1"
    MDA = "S2"
    OUTBOUND = "S3"
    DOWNLOAD = "S4"
    CLI = "cli"


@dataclass(frozen=True, slots=True)
class Envelope:
    sender: str = ""
    recipients: tuple[str, ...] = ()
    client_address: str | None = None
    client_name: str | None = None
    helo: str | None = None
    auth_user: str | None = None
    queue_id: str | None = None
    direction: Direction = Direction.UNKNOWN
    point: Point = Point.CLI
    agent: str = "cli"

    def to_dict(self) -> dict[str, Any]:
        return {
            "sender": self.sender,
            "recipients": list(self.recipients),
            "client_address": self.client_address,
            "client_name": self.client_name,
            "helo": self.helo,
            "auth_user": self.auth_user,
            "queue_id": self.queue_id,
            "direction": self.direction.value,
            "point": self.point.value,
            "agent": self.agent,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Envelope:
        return cls(
            sender=str(data.get("sender", "")),
            recipients=tuple(str(r) for r in data.get("recipients", ())),
            client_address=data.get("client_address"),
            client_name=data.get("client_name"),
            helo=data.get("helo"),
            auth_user=data.get("auth_user"),
            queue_id=data.get("queue_id"),
            direction=Direction(data.get("direction", "unknown")),
            point=Point(data.get("point", "cli")),
            agent=str(data.get("agent", "cli")),
        )


@dataclass(frozen=True, slots=True)
class Message:
    """Raw RFC 5322 bytes and their envelope."""

    raw: bytes
    envelope: Envelope = field(default_factory=Envelope)
