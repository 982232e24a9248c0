"""The content-filter route: Exim -> ``mailwarden smtp-filter`` -> Exim's return port.

A manualroute router sends mail not received on the return port to the
filter over SMTP; the filter hands it back on the return port, where the
router lets it through to the sink.  Clean mail arrives once with our
headers, EICAR is quarantined (after the queue a reject becomes the
quarantine), and with the daemon down the message stays in Exim's queue
and is delivered exactly once by a queue run after the daemon is back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from intercept.exim.conftest import DOMAIN, EximRig
from intercept.harness import EICAR, free_port, wait_until
from intercept.mail import data_reply, make_message
from support.exim import EximInstance

SENDER = "alice@remote.example"


@pytest.fixture(scope="module")
def routed(exim_rig: EximRig) -> Iterator[EximInstance]:
    filter_port, return_port = free_port(), free_port()
    ex = exim_rig.instance("route", filter_port=filter_port, return_port=return_port)
    exim_rig.stack.start_agent(
        "exim-filter", "smtp-filter", filter_port, "--downstream", f"127.0.0.1:{return_port}"
    )
    yield ex
    proc = exim_rig.stack.procs.pop("exim-filter", None)
    if proc is not None:
        proc.stop()


def test_clean_mail_goes_through_the_filter_once(exim_rig: EximRig, routed: EximInstance) -> None:
    message, mid = make_message(sender=SENDER, to=f"bob@{DOMAIN}")
    assert data_reply(routed.port, SENDER, [f"bob@{DOMAIN}"], message)[0] == 250
    wait_until(lambda: exim_rig.delivered(mid), 60, "delivery to the sink")
    [delivered] = exim_rig.delivered(mid)
    assert delivered.count(b"X-Virus-Status: Clean") == 1


def test_eicar_is_quarantined_after_the_queue(exim_rig: EximRig, routed: EximInstance) -> None:
    message, mid = make_message(sender=SENDER, to=f"bob@{DOMAIN}", attachment=EICAR)
    assert data_reply(routed.port, SENDER, [f"bob@{DOMAIN}"], message)[0] == 250

    def held() -> bool:
        return any(mid in raw for raw in quarantined(exim_rig))

    wait_until(held, 60, "the quarantine")
    wait_until(lambda: routed.queued() == [], 60, "an empty Exim queue")
    assert exim_rig.delivered(mid) == []
    assert sum(mid in raw for raw in quarantined(exim_rig)) == 1


def quarantined(rig: EximRig) -> list[str]:
    """The raw text of every message the smtp-filter quarantined."""
    entries = json.loads(rig.stack.cli("quarantine", "list", "--json").stdout)
    return [
        rig.stack.cli("quarantine", "show", entry["id"], "--raw").stdout
        for entry in entries
        if entry["envelope"]["agent"] == "smtp-filter"
    ]


def test_daemon_down_keeps_the_mail_queued_until_it_is_back(
    exim_rig: EximRig, routed: EximInstance
) -> None:
    exim_rig.stack.stop_daemon()
    try:
        message, mid = make_message(sender=SENDER, to=f"bob@{DOMAIN}")
        assert data_reply(routed.port, SENDER, [f"bob@{DOMAIN}"], message)[0] == 250
        wait_until(lambda: len(routed.queued()) == 1, 60, "the message deferred in Exim's queue")
        assert exim_rig.delivered(mid) == []
    finally:
        exim_rig.stack.start_daemon()
    routed.queue_run()
    wait_until(lambda: exim_rig.delivered(mid), 60, "delivery after the restart")
    routed.queue_run()
    assert len(exim_rig.delivered(mid)) == 1
    assert routed.queued() == []
