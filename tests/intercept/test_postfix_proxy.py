"""End to end through a real Postfix: the before-queue proxy (smtpd_proxy_filter).

The SMTP client talks to Postfix's smtpd, which relays the transaction
through ``mailwarden smtp-proxy``; the verdict is the client's reply to DATA,
so nothing is queued and no bounce is generated for a virus.
"""

from __future__ import annotations

from intercept.conftest import Gateway
from intercept.harness import EICAR, wait_until
from intercept.mail import data_reply, eicar_zip, make_message
from support.postfix import DOMAIN, REMOTE


def _in_box(gw: Gateway, user: str, mid: str) -> int:
    return sum(1 for m in gw.postfix.mailbox(user) if m["Message-ID"] == mid)


def test_infected_mail_is_refused_at_data(gateway: Gateway) -> None:
    for attachment in (EICAR, eicar_zip()):
        raw, mid = make_message(sender=f"x@{REMOTE}", to=f"alice@{DOMAIN}", attachment=attachment)
        code, text = data_reply(gateway.port("proxied"), f"x@{REMOTE}", [f"alice@{DOMAIN}"], raw)
        assert code == 554, text
        assert "Infected: Eicar-Test-Signature" in text
        assert not gateway.postfix.queue()
        assert _in_box(gateway, "alice", mid) == 0


def test_clean_mail_passes_with_headers(gateway: Gateway) -> None:
    raw, mid = make_message(sender=f"x@{REMOTE}", to=f"alice@{DOMAIN}")
    code, text = data_reply(gateway.port("proxied"), f"x@{REMOTE}", [f"alice@{DOMAIN}"], raw)
    assert code == 250, text
    assert "queued as" in text  # the after-filter smtpd's own reply
    wait_until(lambda: _in_box(gateway, "alice", mid) == 1, 30, "delivery")
    (msg,) = [m for m in gateway.postfix.mailbox("alice") if m["Message-ID"] == mid]
    assert msg["X-Virus-Status"] == "Clean"


def test_daemon_down_is_a_temporary_failure_at_data(gateway: Gateway) -> None:
    gateway.stack.stop_daemon()
    try:
        raw, mid = make_message(sender=f"x@{REMOTE}", to=f"bob@{DOMAIN}")
        code, text = data_reply(gateway.port("proxied"), f"x@{REMOTE}", [f"bob@{DOMAIN}"], raw)
        assert code == 451, text
        assert not gateway.postfix.queue()
    finally:
        gateway.stack.start_daemon()
    assert _in_box(gateway, "bob", mid) == 0
