"""End to end: Exim's pipe transport is docs/mda.md's recipe, `mailwarden mda` in front of
procmail delivering into a Maildir.

Exim from Debian, unpacked in its own root (``support/exim.py``), configured
by ``exim_local.py``.  Clean
mail arrives tagged, EICAR bounces with our line in the report
(``return_fail_output``), and with the daemon stopped the message waits in
Exim's queue (``temp_errors``) and is delivered once by the next queue run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from intercept.harness import free_port, wait_until
from intercept.mda.exim_local import LocalExim, missing_libraries
from intercept.mda.harness import MdaRig, give_to_mail_user
from intercept.mda.mail import message
from intercept.mda.site import Site
from support.exim import exim_root
from support.smtp_sink import smtp_sink
from support.tools import missing

DOMAIN = "mda.example"
RCPT = f"nobody@{DOMAIN}"

ROUTERS = """\
mailwarden_local:
  driver = accept
  domains = +local_domains
  check_local_user
  transport = mailwarden_procmail
"""

TRANSPORT = r"""\
mailwarden_procmail:
  driver = pipe
  command = {mailwarden} mda -c {config} --sender "\$SENDER" --recipient "\$RECIPIENT" \
    -- /usr/bin/procmail DEFAULT={maildir}/
  use_shell
  user = $local_part
  return_path_add
  delivery_date_add
  envelope_to_add
  message_suffix =
  temp_errors = 75:73
  return_fail_output
  log_fail_output
  current_directory = /
  home_directory = /
"""


@pytest.fixture(scope="module")
def site(rig: MdaRig) -> Iterator[Site[LocalExim]]:
    for tool in ("unshare", "procmail"):
        if shutil.which(tool) is None:
            missing(f"{tool} is not installed")
    root = exim_root()
    if root is None:
        missing("Exim's Debian packages could not be fetched (scripts/bootstrap does it)")
    lacking = missing_libraries(root)
    if lacking:
        missing(f"Exim needs {', '.join(lacking)}")
    folder = Path(tempfile.mkdtemp(prefix="mwmdaexim-"))
    folder.chmod(0o755)
    maildir = folder / "Maildir"
    give_to_mail_user(maildir)
    config = rig.config(
        "exim",
        '[policy]\ninfected = "reject"\nafter_queue_reject = "bounce"\n'
        f'[headers]\nhostname = "mx.{DOMAIN}"\n',
    )
    transport = TRANSPORT.format(mailwarden=rig.launcher, config=config, maildir=maildir)
    with smtp_sink() as (sink, relay_port):
        exim = LocalExim.create(
            folder / "exim",
            root,
            port=free_port(),
            relay_port=relay_port,
            local_domain=DOMAIN,
            routers=ROUTERS,
            transports=transport,
        )
        try:
            exim.start()
            yield Site(exim, exim.port, exim.mainlog, sink, maildir)
        finally:
            exim.stop()
    if not os.environ.get("MAILWARDEN_KEEP_TEST_ROOT"):
        shutil.rmtree(folder, ignore_errors=True)


def test_clean_mail_reaches_procmail_tagged(site: Site[LocalExim]) -> None:
    data, mid = message(to=RCPT, subject="via exim")
    site.smtp("sender@remote.example", [RCPT], data)
    wait_until(lambda: site.delivered(mid), 60, f"local delivery: {site.report()}")
    (got,) = site.delivered(mid)
    assert b"\nX-Virus-Status: Clean\n" in got
    assert f" on mx.{DOMAIN}\n".encode() in got
    # Exim's envelope fields are still there; its From_ line was passed on to procmail
    assert b"\nEnvelope-to: " + RCPT.encode() in got


def test_infected_mail_bounces_with_the_reason(site: Site[LocalExim]) -> None:
    data, mid = message(to=RCPT, infected=True)
    site.smtp("bounce-me@remote.example", [RCPT], data)

    sender = "bounce-me@remote.example"
    wait_until(lambda: site.bounced(sender), 60, f"the bounce: {site.report()}")
    text = " ".join(site.bounced(sender)[0].decode("ascii", "replace").split())
    assert "5.7.1 Infected: Eicar-Test-Signature" in text, text
    assert not site.delivered(mid)


def deferred(site: Site[LocalExim]) -> bool:
    return any(
        " == " in line and "returned 75" in line and "defer" in line
        for line in site.mta.mainlog().splitlines()
    )


def test_daemon_down_queues_then_delivers_once(site: Site[LocalExim], rig: MdaRig) -> None:
    data, mid = message(to=RCPT, subject="retried")
    rig.stack.stop_daemon()
    try:
        site.smtp("sender@remote.example", [RCPT], data)
        wait_until(lambda: deferred(site), 60, f"a deferral: {site.report()}")
        assert site.mta.queue()
        assert not site.delivered(mid)
    finally:
        rig.stack.start_daemon()
    site.mta.run_queue()
    wait_until(lambda: site.delivered(mid), 60, f"delivery after the queue run: {site.report()}")
    wait_until(lambda: not site.mta.queue(), 30, "an empty queue")
    assert len(site.delivered(mid)) == 1
