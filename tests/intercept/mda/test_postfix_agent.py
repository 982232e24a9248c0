"""End to end through the resident agent: Postfix's local(8) runs `mailwarden mda` as its
``mailbox_command`` (as the recipient, ``nobody``), the command hands the message to
`mailwarden mda-agent` (root, with a store ``nobody`` cannot write), and procmail or
dovecot-lda stores what the agent returns.  With ``[mda] agent = "require"`` and the
agent stopped, the mail is deferred in Postfix's queue and delivered exactly once when
the agent is back.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from intercept.harness import wait_until
from intercept.mda.harness import MdaRig
from intercept.mda.local import DOMAIN, DOVECOT_LDA, LocalDelivery
from intercept.mda.mail import message
from intercept.mda.resident import agent_config, start_mda_agent, stop_mda_agent
from intercept.mda.test_agent import history
from support.smtp_sink import Sink, smtp_sink
from support.tools import missing

PLAIN = f"nobody@{DOMAIN}"
BOUNCE = f"nobody+bounce@{DOMAIN}"
POLICY = f"""
[policy]
infected = "quarantine"
after_queue_reject = "bounce"

[[policy.override]]
recipients = ["{BOUNCE}"]
infected = "reject"

[headers]
hostname = "mx.{DOMAIN}"
"""
MDAS = ("procmail", "lda")
AGENT = "postfix-mda-agent"


@pytest.fixture(scope="module")
def site(rig: MdaRig) -> Iterator[tuple[LocalDelivery, Sink, Path]]:
    for tool in ("postfix", "/usr/bin/procmail", DOVECOT_LDA):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            missing(f"{tool} is not installed (scripts/bootstrap installs it)")
    config = agent_config(rig, "pfagent", POLICY, mda='agent = "require"')
    root = Path(tempfile.mkdtemp(prefix="mwmdapfa-", dir=rig.root))
    root.chmod(0o755)
    start_mda_agent(rig, config, name=AGENT)
    with smtp_sink() as (sink, relay_port):
        delivery = LocalDelivery.create(root, rig, config=config, relay_port=relay_port)
        try:
            delivery.postfix.start()
            yield delivery, sink, config
        finally:
            delivery.postfix.stop()
            stop_mda_agent(rig, AGENT)


@pytest.mark.parametrize("mda", MDAS)
def test_clean_mail_arrives_tagged_through_the_agent(
    site: tuple[LocalDelivery, Sink, Path], mda: str
) -> None:
    delivery, _, _ = site
    delivery.use(mda)
    data, mid = message(to=PLAIN, subject=f"agent clean via {mda}")
    delivery.send(data, PLAIN)
    wait_until(lambda: delivery.delivered(mda, mid), 90, f"delivery by {mda}: {delivery.log()}")
    (got,) = delivery.delivered(mda, mid)
    assert got["X-Virus-Status"] == "Clean"  # type: ignore[index]
    assert got["X-Virus-Scanned"].endswith(f" on mx.{DOMAIN}")  # type: ignore[index]
    assert got["Delivered-To"] == PLAIN  # type: ignore[index]


def test_eicar_is_quarantined_in_the_agents_store(
    site: tuple[LocalDelivery, Sink, Path],
) -> None:
    delivery, _, config = site
    delivery.use("procmail")
    subject = f"agent quarantine {uuid.uuid4().hex[:12]}"
    data, mid = message(to=PLAIN, subject=subject, infected=True)
    delivery.send(data, PLAIN)
    wait_until(
        lambda: any(e["subject"] == subject for e in history(config)),
        90,
        f"the quarantine: {delivery.log()}",
    )
    assert delivery.log_has(f"to=<{PLAIN}>", "status=sent")
    assert not delivery.delivered("procmail", mid)


def test_eicar_bounces_with_the_agents_reason(site: tuple[LocalDelivery, Sink, Path]) -> None:
    delivery, sink, _ = site
    delivery.use("procmail")
    tag = uuid.uuid4().hex[:12]
    data, mid = message(to=BOUNCE, subject=f"agent bounce {tag}", infected=True)
    delivery.send(data, BOUNCE, sender=f"{tag}@remote.example")

    def bounced() -> list[bytes]:
        return [m.data for m in sink.messages if m.recipients == [f"{tag}@remote.example"]]

    wait_until(bounced, 90, f"the bounce: {delivery.log()}")
    text = " ".join(bounced()[0].decode("ascii", "replace").split())
    assert "Infected: Eicar-Test-Signature" in text, text
    assert "Status: 5.7.1" in text
    assert not delivery.delivered("procmail", mid)


def test_agent_down_defers_then_delivers_exactly_once(
    site: tuple[LocalDelivery, Sink, Path], rig: MdaRig
) -> None:
    delivery, _, config = site
    delivery.use("procmail")
    data, mid = message(to=PLAIN, subject="agent retry")

    def down() -> None:
        stop_mda_agent(rig, AGENT)

    def up() -> None:
        start_mda_agent(rig, config, name=AGENT)

    delivery.deferred_then_delivered_once(
        "procmail", data, mid, PLAIN, down=down, up=up, reason="mda agent is not answering"
    )
