"""A private Postfix whose local(8) delivers through `mailwarden mda` (``mailbox_command``).

Usage::

    local = LocalDelivery.create(root, rig, relay_port=sink_port)
    local.use("procmail")                     # mailbox_command for that MDA; postfix reload
    local.send(message, "nobody+bounce@mda.example")
    local.maildir("procmail")                 # messages the MDA stored

Builds on ``support.postfix.PostfixInstance`` (its configuration, life cycle
and queue helpers) and only adds, with ``postconf -e``: ``mda.example`` as a
local domain, ``+`` extensions, and a ``mailbox_command`` that is the
recipe of docs/mda.md for procmail, maildrop or dovecot-lda.  Recipients are
``nobody+EXT@mda.example``: local(8) finds the user ``nobody`` and runs the
command as that user, with ``$RECIPIENT`` holding the whole address, which
the policy's overrides match.

SECURITY: test-only; Postfix listens on 127.0.0.1 and is stopped by PID.
"""

from __future__ import annotations

import email
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message as EmailMessage
from pathlib import Path

from intercept.harness import free_port, wait_until
from intercept.mail import send
from intercept.mda.harness import MdaRig, give_to_mail_user, mail_user
from support.postfix import PostfixInstance

DOMAIN = "mda.example"
MDAS = ("procmail", "maildrop", "lda")
DOVECOT_LDA = "/usr/lib/dovecot/dovecot-lda"


@dataclass
class LocalDelivery:
    postfix: PostfixInstance
    rig: MdaRig
    config: Path
    mail: Path

    @classmethod
    def create(cls, root: Path, rig: MdaRig, *, config: Path, relay_port: int) -> LocalDelivery:
        ports = {k: free_port() for k in ("smtp", "lmtp", "proxied", "reinject", "f", "l", "p")}
        postfix = PostfixInstance.create(
            root / "postfix",
            smtp_port=ports["smtp"],
            filtered_lmtp_port=ports["lmtp"],
            proxied_port=ports["proxied"],
            reinject_port=ports["reinject"],
            filter_port=ports["f"],
            lmtp_filter_port=ports["l"],
            proxy_port=ports["p"],
            relay_port=relay_port,
        )
        mail = root / "local-mail"
        local = cls(postfix, rig, config, mail)
        local._prepare_mdas()
        local.postconf(
            f"mydestination = {DOMAIN}",
            "recipient_delimiter = +",
            "local_transport = local",
            f"mailbox_command = {local.mailbox_command('procmail')}",
        )
        return local

    def _prepare_mdas(self) -> None:
        give_to_mail_user(self.mail)
        for name in MDAS:
            give_to_mail_user(self.mail / name)
        # maildrop delivers only into an existing Maildir
        for sub in ("tmp", "new", "cur"):
            give_to_mail_user(self.mail / "maildrop" / sub)
        # maildrop reads a filter file only when the user owns it and nobody else may write it
        mailfilter = self.mail / "mailfilter"
        mailfilter.write_text(f'to "{self.mail / "maildrop"}"\n')
        mailfilter.chmod(0o600)
        user = mail_user()
        os.chown(mailfilter, user.pw_uid, user.pw_gid)
        (self.mail / "dovecot.conf").write_text(
            f"mail_location = maildir:{self.mail / 'lda'}\n"
            f"log_path = {self.mail / 'dovecot-lda.log'}\n"
            "ssl = no\n"
        )

    def mailbox_command(self, mda: str) -> str:
        """docs/mda.md's Postfix recipe for ``mda``, with this rig's paths."""
        wrapper = (
            f"{self.rig.launcher} mda -c {self.config} "
            '--sender "$SENDER" --recipient "$RECIPIENT" -- '
        )
        if mda == "procmail":
            return wrapper + f'/usr/bin/procmail -a "$EXTENSION" DEFAULT={self.mail / "procmail"}/'
        if mda == "maildrop":
            return wrapper + f"/usr/bin/maildrop {self.mail / 'mailfilter'}"
        return wrapper + (
            f'{DOVECOT_LDA} -c {self.mail / "dovecot.conf"} -f "$SENDER" -a "$RECIPIENT"'
        )

    def postconf(self, *settings: str) -> None:
        subprocess.run(
            ["postconf", "-c", str(self.postfix.config_dir), "-e", *settings],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def use(self, mda: str) -> None:
        """Deliver through ``mda`` from now on (new local(8) processes read it)."""
        self.postconf(f"mailbox_command = {self.mailbox_command(mda)}")
        if self.postfix.started:
            subprocess.run(
                ["postfix", "-c", str(self.postfix.config_dir), "reload"],
                check=True,
                capture_output=True,
                timeout=60,
            )

    def send(self, data: bytes, *recipients: str, sender: str = "sender@remote.example") -> None:
        send(self.postfix.ports["reinject"], sender, list(recipients), data)

    def maildir(self, mda: str) -> list[EmailMessage]:
        box = self.mail / mda
        files = [p for sub in ("new", "cur") if (box / sub).is_dir() for p in (box / sub).iterdir()]
        files.sort(key=lambda p: p.stat().st_mtime_ns)
        return [email.message_from_bytes(p.read_bytes()) for p in files if p.is_file()]

    def log(self) -> str:
        return self.postfix.log_tail(20000)

    def delivered(self, mda: str, mid: str) -> list[EmailMessage]:
        """The messages ``mda`` stored with that Message-ID."""
        return [m for m in self.maildir(mda) if m["Message-ID"] == mid]

    def log_has(self, *parts: str) -> bool:
        """Whether one line of Postfix's log holds every one of ``parts``."""
        return any(all(p in line for p in parts) for line in self.log().splitlines())

    def deferred_then_delivered_once(
        self,
        mda: str,
        data: bytes,
        mid: str,
        recipient: str,
        *,
        down: Callable[[], None],
        up: Callable[[], None],
        reason: str,
    ) -> None:
        """With the scanner ``down``, the message waits in the queue deferred for ``reason``
        (dsn 4.7.1); once it is ``up`` again, a queue run delivers it exactly once."""
        down()
        try:
            self.send(data, recipient)

            def deferred() -> list[dict[str, object]]:
                return [
                    r
                    for q in self.postfix.queue()
                    for r in q.get("recipients", [])  # type: ignore[attr-defined]
                    if reason in str(r.get("delay_reason", ""))
                ]

            wait_until(deferred, 90, f"the deferral via {mda}: {self.log()}")
            assert self.log_has(f"to=<{recipient}>", "dsn=4.7.1", "status=deferred")
            assert not self.delivered(mda, mid)
        finally:
            up()
        self.postfix.flush()
        wait_until(lambda: self.delivered(mda, mid), 90, f"delivery after the retry: {self.log()}")
        wait_until(lambda: not self.postfix.queue(), 30, "an empty queue")
        assert len(self.delivered(mda, mid)) == 1
