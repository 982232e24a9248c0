"""Helpers for policy tests: verdicts of each status and messages with an envelope."""

from __future__ import annotations

from typing import Any

from mailwarden.message import Envelope, Message
from mailwarden.verdict import Category, Finding, Status, Verdict


def verdict(status: Status, name: str = "Eicar-Test-Signature", reason: str = "") -> Verdict:
    if status is Status.INFECTED:
        return Verdict(status, (Finding(name, "1/eicar.com", "clamav"),))
    if status is Status.SUSPICIOUS:
        return Verdict(status, (Finding(name, "2/a.exe", "heuristics", Category.SUSPICIOUS),))
    return Verdict(status, reason=reason or None)


def message(*recipients: str, sender: str = "x@remote.example", **env: Any) -> Message:
    return Message(b"Subject: hi\r\n\r\nbody\r\n", Envelope(sender, tuple(recipients), **env))
