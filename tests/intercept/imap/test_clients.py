"""Real clients through the IMAP proxy: fetchmail (STARTTLS, verified; it fetches
the header and the text as two sections) gets clean messages exactly as Dovecot
stores them and the infected ones as warnings; neomutt in batch copies the INBOX
(header listing, then each message) with the same result."""

from __future__ import annotations

from pathlib import Path

from intercept.pop3.test_clients import check_fetchmail, check_neomutt
from support.dovecot import ProxyRig


def test_fetchmail_downloads_through_the_proxy(imap: ProxyRig, tmp_path: Path) -> None:
    check_fetchmail(imap, "erin", tmp_path)


def test_neomutt_copies_the_mailbox_through_the_proxy(imap: ProxyRig, tmp_path: Path) -> None:
    check_neomutt(imap, "frank", tmp_path)
