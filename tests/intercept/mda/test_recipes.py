"""`mailwarden pipe` inside real procmail and maildrop, with the recipes of docs/mda.md.

The MDA runs as the mail user with the message on its standard input, as an
MTA would start it; the recipe's exit status is what the MTA would see.
"""

from __future__ import annotations

import email
import shutil
import subprocess
from pathlib import Path

import pytest

from intercept.mda.harness import MAIL_USER, MdaRig, give_to_mail_user
from intercept.mda.mail import message
from support.tools import missing

RCPT = "nobody@mda.example"

PROCMAILRC = """\
SHELL=/bin/sh

:0 fw
| {mailwarden} pipe -c {config} --sender "$SENDER" --recipient "$LOGNAME@mda.example"

:0 e
{{ MAILWARDEN=$? }}

:0
* MAILWARDEN ?? ^^(1|2)^^
/dev/null

:0
* MAILWARDEN ?? ^^77^^
{{ EXITCODE=77 HOST }}

:0
* MAILWARDEN ?? .
{{ EXITCODE=75 HOST }}
"""

MAILFILTER = """\
SHELL="/bin/sh"
exception {{
    xfilter "{mailwarden} pipe -c {config} --recipient $LOGNAME@mda.example"
}}
if ($RETURNCODE == 1 || $RETURNCODE == 2)
{{
    to "/dev/null"
}}
if ($RETURNCODE == 77)
{{
    EXITCODE=77
    exit
}}
if ($RETURNCODE != 0)
{{
    EXITCODE=75
    exit
}}
to "{maildir}"
"""


def maildir(path: Path) -> Path:
    for sub in ("tmp", "new", "cur"):
        give_to_mail_user(path / sub)
    return path


def stored(path: Path, mid: str) -> list[email.message.Message]:
    found = [email.message_from_bytes(p.read_bytes()) for p in (path / "new").iterdir()]
    return [m for m in found if m["Message-ID"] == mid]


def run_mda(argv: list[str], data: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        argv,
        input=data,
        capture_output=True,
        user=MAIL_USER,
        cwd="/",
        # as local(8) sets it for nobody: a login shell that runs nothing
        env={
            "PATH": "/usr/bin:/bin",
            "LOGNAME": "nobody",
            "HOME": "/nonexistent",
            "SHELL": "/usr/sbin/nologin",
        },
        check=False,
        timeout=120,
    )


def procmail(rig: MdaRig, name: str, config: Path) -> tuple[list[str], Path]:
    if shutil.which("procmail") is None:
        missing("procmail is not installed (scripts/bootstrap installs it)")
    box = maildir(rig.out / f"procmail-{name}")
    rc = rig.out / f"procmailrc-{name}"
    rc.write_text(PROCMAILRC.format(mailwarden=rig.launcher, config=config))
    give_to_mail_user(rig.out)
    return ["/usr/bin/procmail", f"DEFAULT={box}/", str(rc)], box


def maildrop(rig: MdaRig, name: str, config: Path) -> tuple[list[str], Path]:
    if shutil.which("maildrop") is None:
        missing("maildrop is not installed (scripts/bootstrap installs it)")
    box = maildir(rig.out / f"maildrop-{name}")
    rc = rig.out / f"mailfilter-{name}"
    rc.write_text(MAILFILTER.format(mailwarden=rig.launcher, config=config, maildir=box))
    rc.chmod(0o600)  # maildrop reads only a filter file its user owns and nobody else writes
    shutil.chown(rc, MAIL_USER)
    return ["/usr/bin/maildrop", str(rc)], box


RECIPES = {"procmail": procmail, "maildrop": maildrop}


@pytest.mark.parametrize("mda", RECIPES)
def test_clean_mail_is_delivered_with_the_status_header(rig: MdaRig, mda: str) -> None:
    argv, box = RECIPES[mda](rig, "clean", rig.stack.config)
    data, mid = message(to=RCPT, from_line=True)
    done = run_mda(argv, data)
    assert done.returncode == 0, done.stderr
    (got,) = stored(box, mid)
    assert got["X-Virus-Status"] == "Clean"


@pytest.mark.parametrize("mda", RECIPES)
def test_quarantined_mail_is_not_delivered(rig: MdaRig, mda: str) -> None:
    argv, box = RECIPES[mda](rig, "quarantine", rig.stack.config)
    data, mid = message(to=RCPT, infected=True)
    done = run_mda(argv, data)
    assert done.returncode == 0, done.stderr
    assert not stored(box, mid)


@pytest.mark.parametrize("mda", RECIPES)
def test_a_bounce_reaches_the_mta(rig: MdaRig, mda: str) -> None:
    config = rig.config("recipe-bounce", '[policy]\nafter_queue_reject = "bounce"\n')
    argv, box = RECIPES[mda](rig, "bounce", config)
    data, mid = message(to=RCPT, infected=True)
    done = run_mda(argv, data)
    assert done.returncode == 77, done.stderr
    assert not stored(box, mid)


@pytest.mark.parametrize("mda", RECIPES)
def test_daemon_down_makes_the_mta_retry(rig: MdaRig, mda: str) -> None:
    config = rig.config("recipe-down", f'[mda]\ndaemon_socket = "{rig.out / "none.sock"}"\n')
    argv, box = RECIPES[mda](rig, "down", config)
    data, mid = message(to=RCPT)
    done = run_mda(argv, data)
    assert done.returncode == 75, done.stderr
    assert not stored(box, mid)
