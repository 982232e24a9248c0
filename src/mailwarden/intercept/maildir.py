"""Deliver into a local Maildir: the downstream when no MTA runs on the machine.

``--downstream maildir:PATH`` makes the filter a complete little mail
server: what the policy delivers lands in ``PATH/new`` (one file per
delivery, LF line ends, with ``Return-Path`` and an ``X-Original-To`` per
recipient), so a
person can send a message with ``swaks`` and read it, tagged, with any
Maildir reader::

    downstream = MaildirDownstream(Path("/srv/mail/scanned"))
    replies = await downstream.deliver(data, Transaction(sender, rcpts))

The file is written in ``tmp/``, flushed and synced, then linked into
``new/`` and the folder synced, before 250 is given (Maildir's own rule:
nothing is reported delivered that a crash could lose).

SECURITY: needs write access to PATH only; creates it 0700 and files 0600.
File names are generated (time, random, host), never taken from mail.
Envelope addresses are written as header values only after removing control
characters, so they cannot start a new header line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from pathlib import Path

from mailwarden.intercept.downstream import Transaction
from mailwarden.policy import SmtpReply

log = logging.getLogger("mailwarden.intercept.maildir")

_FAILED = SmtpReply(451, "4.3.0", "Local delivery failed; try again later")


class MaildirDownstream:
    """Delivery into one Maildir folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")

    def __str__(self) -> str:
        return f"maildir:{self.path}"

    def prepare(self) -> None:
        """Create the folder and its tmp/new/cur (at start-up, to fail early)."""
        for sub in ("", "tmp", "new", "cur"):
            (self.path / sub).mkdir(mode=0o700, parents=True, exist_ok=True)

    async def deliver(self, data: bytes, txn: Transaction) -> dict[str, SmtpReply]:
        try:
            name = await asyncio.to_thread(self._write, data, txn)
        except OSError as exc:
            log.error("maildir %s: %s", self.path, exc)
            return dict.fromkeys(txn.recipients, _FAILED)
        ok = SmtpReply(250, "2.0.0", f"Ok: delivered as {name}")
        return dict.fromkeys(txn.recipients, ok)

    def _write(self, data: bytes, txn: Transaction) -> str:
        self.prepare()
        name = f"{time.time_ns()}.{os.getpid()}_{secrets.token_hex(6)}.{self._host}"
        head = [f"Return-Path: <{_clean(txn.sender)}>"]
        head += [f"X-Original-To: {_clean(r)}" for r in txn.recipients]
        # Maildir files end lines the Unix way
        blob = ("\n".join(head) + "\n").encode("utf-8", "replace") + data.replace(b"\r\n", b"\n")
        tmp = self.path / "tmp" / name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(blob)
                out.flush()
                os.fsync(out.fileno())
            os.link(tmp, self.path / "new" / name)
        finally:
            tmp.unlink(missing_ok=True)
        dir_fd = os.open(self.path / "new", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return name

    async def close(self) -> None:
        return None


def _clean(address: str) -> str:
    return "".join(ch for ch in address if ch >= " " and ch != "\x7f")[:512]
