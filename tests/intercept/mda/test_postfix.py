"""End to end: Postfix's local(8) runs `mailwarden mda` as its ``mailbox_command``, and
mailwarden hands the message to procmail, maildrop or dovecot-lda, which store it in a
Maildir.  Clean mail arrives tagged; EICAR is quarantined or bounced per recipient; with
the daemon stopped the mail stays deferred (4.x.x) in Postfix's queue and is delivered
exactly once after the daemon is back.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from intercept.harness import wait_until
from intercept.mda.harness import MdaRig
from intercept.mda.local import DOMAIN, DOVECOT_LDA, MDAS, LocalDelivery
from intercept.mda.mail import message
from support.smtp_sink import Sink, smtp_sink
from support.tools import missing

POLICY = f"""
[policy]
infected = "quarantine"
after_queue_reject = "bounce"

[[policy.override]]
recipients = ["nobody+bounce@{DOMAIN}"]
infected = "reject"

[headers]
hostname = "mx.{DOMAIN}"
"""

PLAIN = f"nobody@{DOMAIN}"
BOUNCE = f"nobody+bounce@{DOMAIN}"


@pytest.fixture(scope="module")
def local(rig: MdaRig) -> Iterator[tuple[LocalDelivery, Sink]]:
    for tool in ("postfix", "/usr/bin/procmail", "/usr/bin/maildrop", DOVECOT_LDA):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            missing(f"{tool} is not installed (scripts/bootstrap installs it)")
    root = Path(tempfile.mkdtemp(prefix="mwmdapf-", dir=rig.root))
    root.chmod(0o755)
    with smtp_sink() as (sink, relay_port):
        delivery = LocalDelivery.create(
            root, rig, config=rig.config("postfix", POLICY), relay_port=relay_port
        )
        try:
            delivery.postfix.start()
            yield delivery, sink
        finally:
            delivery.postfix.stop()


@pytest.mark.parametrize("mda", MDAS)
def test_clean_mail_arrives_tagged(local: tuple[LocalDelivery, Sink], mda: str) -> None:
    delivery, _ = local
    delivery.use(mda)
    data, mid = message(to=PLAIN, subject=f"clean via {mda}")
    delivery.send(data, PLAIN)
    wait_until(lambda: delivery.delivered(mda, mid), 90, f"delivery by {mda}: {delivery.log()}")
    (got,) = delivery.delivered(mda, mid)
    assert got["X-Virus-Status"] == "Clean"  # type: ignore[index]
    assert got["X-Virus-Scanned"].endswith(f" on mx.{DOMAIN}")  # type: ignore[index]
    assert got["Subject"] == f"clean via {mda}"  # type: ignore[index]
    # Postfix's own fields are still there, below ours
    assert got["Delivered-To"] == PLAIN  # type: ignore[index]


@pytest.mark.parametrize("mda", MDAS)
def test_eicar_is_quarantined(local: tuple[LocalDelivery, Sink], rig: MdaRig, mda: str) -> None:
    delivery, _ = local
    delivery.use(mda)
    data, mid = message(to=PLAIN, subject=f"quarantine {mda} {mid_tag()}", infected=True)
    subject = data.split(b"Subject: ", 1)[1].split(b"\n", 1)[0].decode()
    delivery.send(data, PLAIN)

    def quarantined() -> bool:
        return any(e["subject"] == subject for e in rig.quarantined())

    wait_until(quarantined, 90, f"quarantine via {mda}: {delivery.log()}")
    # the MTA was told the delivery succeeded; the MDA never saw the message
    assert delivery.log_has(f"to=<{PLAIN}>", "status=sent")
    assert not delivery.delivered(mda, mid)


@pytest.mark.parametrize("mda", MDAS)
def test_eicar_bounces_with_the_reason(local: tuple[LocalDelivery, Sink], mda: str) -> None:
    delivery, sink = local
    delivery.use(mda)
    tag = mid_tag()
    data, mid = message(to=BOUNCE, subject=f"bounce {tag}", infected=True)
    delivery.send(data, BOUNCE, sender=f"{tag}@remote.example")

    def bounced() -> list[bytes]:
        return [m.data for m in sink.messages if m.recipients == [f"{tag}@remote.example"]]

    wait_until(bounced, 90, f"the bounce via {mda}: {delivery.log()}")
    (dsn,) = bounced()
    text = " ".join(dsn.decode("ascii", "replace").split())  # the report folds long lines
    assert "Infected: Eicar-Test-Signature" in text, text
    assert "Status: 5.7.1" in text
    assert delivery.log_has(f"to=<{BOUNCE}>", "dsn=5.7.1", "status=bounced")
    assert not delivery.delivered(mda, mid)


@pytest.mark.parametrize("mda", MDAS)
def test_daemon_down_defers_then_delivers_exactly_once(
    local: tuple[LocalDelivery, Sink], rig: MdaRig, mda: str
) -> None:
    delivery, _ = local
    delivery.use(mda)
    data, mid = message(to=PLAIN, subject=f"retry via {mda}")
    delivery.deferred_then_delivered_once(
        mda,
        data,
        mid,
        PLAIN,
        down=rig.stack.stop_daemon,
        up=rig.stack.start_daemon,
        reason="Scanning temporarily unavailable",
    )
    assert delivery.delivered(mda, mid)[0]["X-Virus-Status"] == "Clean"


def mid_tag() -> str:
    import uuid

    return uuid.uuid4().hex[:12]
