"""Real clients through the POP3 proxy: fetchmail (STLS, verified) downloads clean
messages exactly as Dovecot stores them and the infected ones as warnings; neomutt
in batch (keys pushed from its muttrc) copies the mailbox with the same result.
``check_fetchmail`` and ``check_neomutt`` serve the IMAP tests too."""

from __future__ import annotations

import email
import mailbox
import shutil
from pathlib import Path

from support.dovecot import EICAR, ProxyRig, clean_message, fetchmail, neomutt
from support.tools import require


def delivered(out: Path) -> dict[bytes, bytes]:
    """Message files by Subject line."""
    found = {}
    for path in out.iterdir():
        data = path.read_bytes()
        subject = next(line for line in data.split(b"\n") if line.startswith(b"Subject:"))
        found[subject] = data
    return found


def check_fetchmail(rig: ProxyRig, user: str, tmp_path: Path) -> None:
    require(shutil.which("fetchmail") is not None, "fetchmail is not installed")
    result = fetchmail(rig, user, tmp_path / "out")
    assert result.returncode == 0, result.stderr + result.stdout
    got = delivered(tmp_path / "out")
    assert len(got) == 5
    for n in (1, 2):
        assert got[b"Subject: clean message %d" % n] == clean_message(n)
    assert got[b"Subject: clean message 3"].rstrip(b"\n") == clean_message(
        3, body=b"no final line end"
    )
    infected = got[b"Subject: infected message 1"]
    assert EICAR not in infected and b"eicar.com" not in infected
    assert b"X-Virus-Status: Infected (Eicar-Test-Signature)" in infected
    assert EICAR not in got[b"Subject: tiny"]


def check_neomutt(rig: ProxyRig, user: str, tmp_path: Path) -> None:
    require(shutil.which("neomutt") is not None, "neomutt is not installed")
    require(shutil.which("script") is not None, "script is not installed (bsdutils)")
    saved = tmp_path / "saved.mbox"
    result = neomutt(rig, user, saved)
    assert saved.exists(), result.stdout[-2000:]
    got = {str(m["Subject"]): m for m in mailbox.mbox(saved)}
    assert len(got) == 5
    for n in (1, 2):
        original = email.message_from_bytes(clean_message(n))
        assert got[f"clean message {n}"].get_payload() == original.get_payload()
        assert got[f"clean message {n}"]["Message-ID"] == original["Message-ID"]
    warning = got["infected message 1"]
    assert warning["X-Virus-Status"] == "Infected (Eicar-Test-Signature)"
    assert warning.get_content_type() == "text/plain"
    assert EICAR.decode() not in warning.as_string()
    assert EICAR.decode() not in got["tiny"].as_string()


def test_fetchmail_downloads_through_the_proxy(pop3: ProxyRig, tmp_path: Path) -> None:
    check_fetchmail(pop3, "erin", tmp_path)


def test_neomutt_copies_the_mailbox_through_the_proxy(pop3: ProxyRig, tmp_path: Path) -> None:
    check_neomutt(pop3, "frank", tmp_path)
