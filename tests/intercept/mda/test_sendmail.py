"""End to end: Sendmail's local mailer is `mailwarden mda` (LOCAL_MAILER_PATH/ARGS), in front
of procmail delivering into a Maildir.

Sendmail from Debian, unpacked in its own root (``support/sendmail.py``);
this module only adds the local-mailer lines of docs/mda.md and a local
domain.  The mailer flags are ``local_procmail``'s without ``f`` (``S``: the
mailer runs as root, so this store is root's, apart from the rig's).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from intercept.harness import free_port, wait_until
from intercept.mda.harness import MdaRig
from intercept.mda.mail import message
from intercept.mda.site import Site
from support.sendmail import BINARY, HOSTNAME, SendmailInstance, require_sendmail_root
from support.smtp_sink import smtp_sink
from support.tools import missing

DOMAIN = "mda.example"
RCPT = f"nobody@{DOMAIN}"


def add_local_mailer(sendmail: SendmailInstance, path: str, args: str) -> None:
    """Rebuild the instance's sendmail.cf with docs/mda.md's local mailer and a local domain."""
    mc = sendmail.folder / "sendmail.mc"
    local = (
        f"LOCAL_DOMAIN(`{DOMAIN}')dnl\n"
        f"define(`LOCAL_MAILER_PATH', `{path}')dnl\n"
        f"define(`LOCAL_MAILER_ARGS', `{args}')dnl\n"
        "define(`LOCAL_MAILER_FLAGS', `SPhn9')dnl\n"
        # the test folder lives below /tmp: world-writable, but sticky
        "define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl\n"
    )
    mc.write_text(mc.read_text().replace("MAILER(`local')dnl", local + "MAILER(`local')dnl", 1))
    built = subprocess.run(["m4", str(mc)], capture_output=True, check=True, timeout=60)
    sendmail.cf.write_bytes(built.stdout)
    # local delivery looks the recipient up in the aliases first: build the (empty) database
    run_sendmail(sendmail, "-bi")


def run_sendmail(sendmail: SendmailInstance, flag: str) -> None:
    """``sendmail -C CF FLAG`` in a UTS namespace with the instance's host name (see
    support/sendmail): ``-q`` runs the queue, ``-bi`` builds the aliases database."""
    subprocess.run(
        [
            "unshare",
            "-u",
            "sh",
            "-c",
            f'hostname {HOSTNAME} && exec "$0" -C "$1" "$2"',
            str(sendmail.root / BINARY),
            str(sendmail.cf),
            flag,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def site(rig: MdaRig) -> Iterator[Site[SendmailInstance]]:
    if shutil.which("procmail") is None:
        missing("procmail is not installed")
    root = require_sendmail_root()
    folder = Path(tempfile.mkdtemp(prefix="mwmdasm-"))
    maildir = folder / "Maildir"
    store = folder / "store"
    config = rig.config(
        "sendmail",
        '[policy]\ninfected = "reject"\nafter_queue_reject = "bounce"\n'
        f'[headers]\nhostname = "mx.{DOMAIN}"\n',
    )
    config.write_text(config.read_text().replace(str(rig.root / "mw" / "store"), str(store)))
    args = (
        f"mailwarden mda -c {config} --sender $f --recipient $u@$j "
        f"-- /usr/bin/procmail -Y DEFAULT={maildir}/"
    )
    with smtp_sink() as (sink, relay_port):
        sendmail = SendmailInstance.create(
            folder / "sendmail", root, port=free_port(), relay_port=relay_port
        )
        add_local_mailer(sendmail, str(rig.launcher), args)
        try:
            sendmail.start()
            yield Site(sendmail, sendmail.port, sendmail.output, sink, maildir)
        finally:
            sendmail.stop()
    if not os.environ.get("MAILWARDEN_KEEP_TEST_ROOT"):
        shutil.rmtree(folder, ignore_errors=True)


def test_clean_mail_reaches_procmail_tagged(site: Site[SendmailInstance]) -> None:
    data, mid = message(to=RCPT, subject="via sendmail")
    site.smtp("sender@remote.example", [RCPT], data)
    wait_until(lambda: site.delivered(mid), 60, f"local delivery: {site.report()}")
    (got,) = site.delivered(mid)
    assert b"\nX-Virus-Status: Clean\n" in got
    assert f" on mx.{DOMAIN}\n".encode() in got


def test_infected_mail_bounces_with_the_reason(site: Site[SendmailInstance]) -> None:
    data, mid = message(to=RCPT, infected=True)
    site.smtp("bounce-me@remote.example", [RCPT], data)

    sender = "bounce-me@remote.example"
    wait_until(lambda: site.bounced(sender), 60, f"the bounce: {site.report()}")
    text = " ".join(site.bounced(sender)[0].decode("ascii", "replace").split())
    assert "5.7.1 Infected: Eicar-Test-Signature" in text, text
    assert not site.delivered(mid)


def test_daemon_down_queues_then_delivers_once(site: Site[SendmailInstance], rig: MdaRig) -> None:
    data, mid = message(to=RCPT, subject="retried")
    rig.stack.stop_daemon()
    try:
        site.smtp("sender@remote.example", [RCPT], data)
        wait_until(site.mta.queue, 60, "the message in Sendmail's queue")
        assert not site.delivered(mid)
    finally:
        rig.stack.start_daemon()
    run_sendmail(site.mta, "-q")
    wait_until(lambda: site.delivered(mid), 60, f"delivery after the queue run: {site.report()}")
    wait_until(lambda: not site.mta.queue(), 30, "an empty queue")
    assert len(site.delivered(mid)) == 1
