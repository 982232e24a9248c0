"""Build messages, verdicts and actions for the notification tests.

SECURITY: test-only.
"""

from __future__ import annotations

from pathlib import Path

from mailwarden.config import Config, load_config
from mailwarden.message import Direction, Envelope, Message, Point
from mailwarden.notify import NotifySettings
from mailwarden.policy import Action, Mode, Policy, decide
from mailwarden.verdict import Finding, Status, Verdict

EICAR = Verdict(Status.INFECTED, (Finding("Eicar-Test-Signature", "2/eicar.com", "clamav"),))
HEURISTIC = Verdict(
    Status.SUSPICIOUS, (Finding("Heuristics.Executable", "2/setup.exe", "heuristics"),)
)
UNSCANNED = Verdict(Status.UNSCANNED, reason="encrypted archive")
ERROR = Verdict(Status.ERROR, reason="daemon unreachable")
CLEAN = Verdict(Status.CLEAN)
VERDICTS = {"infected": EICAR, "suspicious": HEURISTIC, "unscanned": UNSCANNED, "error": ERROR}

RAW = (
    b"From: Alice <alice@remote.example>\r\n"
    b"To: bob@example.org\r\n"
    b"Subject: Invoice 42\r\n"
    b"Message-ID: <m1@remote.example>\r\n"
    b"\r\n"
    b"body\r\n"
)


def config(tmp_path: Path, extra: str = "") -> Config:
    path = tmp_path / "mw.toml"
    path.write_text('[network]\nlocal_domains = ["example.org"]\n' + extra)
    return load_config(path)


def message(
    raw: bytes = RAW,
    *,
    sender: str = "alice@remote.example",
    rcpts: tuple[str, ...] = ("bob@example.org",),
    direction: Direction = Direction.INBOUND,
) -> Message:
    return Message(
        raw,
        Envelope(
            sender,
            rcpts,
            client_address="192.0.2.7",
            queue_id="Q1",
            direction=direction,
            point=Point.MTA,
            agent="smtp-filter",
        ),
    )


def decided(cfg: Config, msg: Message, verdict: Verdict) -> Action:
    return decide(verdict, msg, Policy.from_config(cfg), mode=Mode.AFTER_QUEUE)


def settings(cfg: Config) -> NotifySettings:
    return NotifySettings.from_config(cfg, host="gw.example.org")
