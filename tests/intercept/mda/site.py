"""An MTA under test with a Maildir behind it and a sink for its bounces.

Usage::

    site = Site(mta=sendmail, port=sendmail.port, log=sendmail.output, sink=sink,
                maildir=folder / "Maildir")
    site.smtp("sender@remote.example", ["nobody@mda.example"], data)
    site.delivered(mid)                 # files in the Maildir holding that Message-ID
    site.bounced("sender@remote.example")
    site.report()                       # the MTA's log and the bounces, for failures

SECURITY: test-only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from intercept.mail import send
from support.smtp_sink import Sink

M = TypeVar("M")


@dataclass
class Site(Generic[M]):
    mta: M
    port: int
    log: Callable[[], str]
    sink: Sink
    maildir: Path

    def smtp(self, sender: str, recipients: list[str], data: bytes) -> None:
        # Sendmail refuses bare line feeds in SMTP; every MTA takes CRLF
        send(self.port, sender, recipients, data.replace(b"\n", b"\r\n"))

    def delivered(self, mid: str) -> list[bytes]:
        new = self.maildir / "new"
        files = list(new.iterdir()) if new.is_dir() else []
        return [p.read_bytes() for p in files if mid.encode() in p.read_bytes()]

    def bounced(self, sender: str) -> list[bytes]:
        return [m.data for m in self.sink.messages if m.recipients == [sender]]

    def report(self) -> str:
        """What a failing test shows: the MTA's log and the bounces it sent."""
        bounces = [m.data.decode(errors="replace")[-1500:] for m in self.sink.messages]
        return f"{self.log()}\nbounces: {bounces}"
