"""End to end through a real Postfix: the after-queue filter (content_filter), SMTP and LMTP.

Postfix is set up as FILTER_README describes (``support/postfix.py``); mail
is submitted by SMTP to Postfix and read back from its Maildirs, its queue
(``postqueue -j``) and mailwarden's quarantine (``mailwarden quarantine``).
"""

from __future__ import annotations

import json

from intercept.conftest import Gateway
from intercept.harness import EICAR, wait_until
from intercept.mail import eicar_zip, make_message, send
from support.postfix import DOMAIN, REMOTE


def _find(gw: Gateway, user: str, mid: str) -> list[object]:
    return [m for m in gw.postfix.mailbox(user) if m["Message-ID"] == mid]


def _delivered(gw: Gateway, user: str, mid: str, timeout: float = 30) -> object:
    wait_until(lambda: _find(gw, user, mid), timeout, f"{mid} in {user}'s Maildir")
    found = _find(gw, user, mid)
    assert len(found) == 1
    return found[0]


def _queue_empty(gw: Gateway) -> bool:
    return not gw.postfix.queue()


def _quarantine_ids(gw: Gateway) -> set[str]:
    out = gw.stack.cli("quarantine", "list", "--json").stdout
    return {str(e["id"]) for e in (json.loads(out) if out.strip() else [])}


def test_clean_message_arrives_with_headers_and_original_client(gateway: Gateway) -> None:
    raw, mid = make_message(sender=f"someone@{REMOTE}", to=f"alice@{DOMAIN}")
    send(gateway.port("filtered"), f"someone@{REMOTE}", [f"alice@{DOMAIN}"], raw)
    msg = _delivered(gateway, "alice", mid)
    assert msg["X-Virus-Status"] == "Clean"  # type: ignore[index]
    assert msg["X-Virus-Scanned"].startswith("mailwarden ")  # type: ignore[index]
    assert msg["X-Virus-Scanned"].endswith(f"on gw.{DOMAIN}")  # type: ignore[index]
    # XFORWARD: the re-injection logs the original client and queue id, not the filter
    received = msg.get_all("Received")  # type: ignore[attr-defined]
    first_id = received[1].split(" id ")[1].split()[0]
    log = gateway.postfix.log_tail(200_000)
    assert f"orig_queue_id={first_id}, orig_client=localhost[127.0.0.1]" in log


def test_eicar_and_infected_zip_are_quarantined_not_delivered(gateway: Gateway) -> None:
    before = _quarantine_ids(gateway)
    mids = []
    for attachment, name in ((EICAR, "eicar.com"), (eicar_zip(), "invoice.zip")):
        raw, mid = make_message(
            sender=f"someone@{REMOTE}", to=f"alice@{DOMAIN}", attachment=attachment, filename=name
        )
        # Postfix already accepted it; after the queue a reject becomes quarantine
        send(gateway.port("filtered"), f"someone@{REMOTE}", [f"alice@{DOMAIN}"], raw)
        mids.append(mid)
    wait_until(lambda: len(_quarantine_ids(gateway) - before) >= 2, 30, "two quarantine entries")
    wait_until(lambda: _queue_empty(gateway), 30, "an empty Postfix queue")
    for mid in mids:
        assert not _find(gateway, "alice", mid)
    new = _quarantine_ids(gateway) - before
    listing = gateway.stack.cli("quarantine", "list").stdout
    assert "Eicar" in listing
    for qid in new:
        shown = gateway.stack.cli("quarantine", "show", qid).stdout
        assert f"alice@{DOMAIN}" in shown


def test_released_message_arrives_and_is_not_quarantined_again(gateway: Gateway) -> None:
    before = _quarantine_ids(gateway)
    raw, mid = make_message(sender=f"someone@{REMOTE}", to=f"alice@{DOMAIN}", attachment=EICAR)
    send(gateway.port("filtered"), f"someone@{REMOTE}", [f"alice@{DOMAIN}"], raw)
    wait_until(lambda: _quarantine_ids(gateway) - before, 30, "the quarantine entry")
    (qid,) = _quarantine_ids(gateway) - before
    # release re-injects through Postfix, so the message passes the filter again
    gateway.stack.cli("quarantine", "release", qid)
    msg = _delivered(gateway, "alice", mid)
    assert msg["X-Virus-Status"].startswith("Infected")  # type: ignore[index]
    assert msg["X-Mailwarden-Release"] is None  # type: ignore[index]
    wait_until(lambda: _queue_empty(gateway), 30, "an empty Postfix queue")
    assert _quarantine_ids(gateway) - before == {qid}


def test_outbound_mail_gets_the_outbound_policy(gateway: Gateway) -> None:
    # from a trusted client to a remote domain: outbound, where infected mail is tagged
    raw, mid = make_message(sender=f"alice@{DOMAIN}", to=f"friend@{REMOTE}", attachment=EICAR)
    send(gateway.port("filtered"), f"alice@{DOMAIN}", [f"friend@{REMOTE}"], raw)

    def arrived() -> list[bytes]:
        return [m.data for m in gateway.sink.messages if mid.encode() in m.data]

    wait_until(arrived, 30, "the outbound message at the relay")
    (data,) = arrived()
    assert b"Subject: ***VIRUS*** hello" in data
    assert b"X-Virus-Status: Infected (Eicar-Test-Signature)" in data


def test_per_recipient_policies_in_one_smtp_transaction(gateway: Gateway) -> None:
    # alice: quarantine (default), bob: tag (override); one SMTP reply serves both
    raw, mid = make_message(sender=f"x@{REMOTE}", to=f"alice@{DOMAIN}", attachment=EICAR)
    send(gateway.port("filtered"), f"x@{REMOTE}", [f"alice@{DOMAIN}", f"bob@{DOMAIN}"], raw)
    msg = _delivered(gateway, "bob", mid)
    assert msg["Subject"] == "***VIRUS*** hello"  # type: ignore[index]
    wait_until(lambda: _queue_empty(gateway), 30, "an empty Postfix queue")
    assert not _find(gateway, "alice", mid)


def test_lmtp_answers_each_recipient(gateway: Gateway) -> None:
    # alice: quarantine, bob: tag, carol: defer -- only carol stays in Postfix's queue
    raw, mid = make_message(sender=f"x@{REMOTE}", to=f"alice@{DOMAIN}", attachment=EICAR)
    rcpts = [f"alice@{DOMAIN}", f"bob@{DOMAIN}", f"carol@{DOMAIN}"]
    send(gateway.port("filtered_lmtp"), f"x@{REMOTE}", rcpts, raw)
    msg = _delivered(gateway, "bob", mid)
    assert msg["Subject"] == "***VIRUS*** hello"  # type: ignore[index]

    def deferred_for_carol() -> bool:
        for entry in gateway.postfix.queue():
            left = [r["address"] for r in entry["recipients"]]  # type: ignore[index,union-attr]
            if entry["queue_name"] == "deferred" and left == [f"carol@{DOMAIN}"]:
                return True
        return False

    wait_until(deferred_for_carol, 30, "the message deferred for carol only")
    assert not _find(gateway, "alice", mid)
    assert not _find(gateway, "carol", mid)
    for entry in gateway.postfix.queue():
        gateway.postfix.delete(str(entry["queue_id"]))


def test_daemon_down_keeps_mail_in_postfix_then_delivers_each_once(gateway: Gateway) -> None:
    gateway.stack.stop_daemon()
    mids = []
    try:
        for n in range(3):
            raw, mid = make_message(
                sender=f"x@{REMOTE}", to=f"carol@{DOMAIN}", subject=f"while down {n}"
            )
            send(gateway.port("filtered"), f"x@{REMOTE}", [f"carol@{DOMAIN}"], raw)
            mids.append(mid)

        def all_deferred() -> bool:
            queue = gateway.postfix.queue()
            return len(queue) == 3 and all(e["queue_name"] == "deferred" for e in queue)

        wait_until(all_deferred, 60, "three deferred messages")
        assert not any(_find(gateway, "carol", mid) for mid in mids)
    finally:
        gateway.stack.start_daemon()
    gateway.postfix.flush()
    wait_until(lambda: _queue_empty(gateway), 60, "Postfix to deliver the deferred mail")
    for mid in mids:
        assert len(_find(gateway, "carol", mid)) == 1


def test_dsn_parameters_pass_through_the_filter(gateway: Gateway) -> None:
    # NOTIFY=SUCCESS reaches the final delivery, so the report says "delivered"
    # (a filter that dropped DSN would make Postfix report "relayed" instead)
    import smtplib

    raw, mid = make_message(sender=f"alice@{DOMAIN}", to=f"bob@{DOMAIN}", subject="dsn")
    with smtplib.SMTP("127.0.0.1", gateway.port("filtered"), timeout=60) as client:
        client.ehlo("orig-client.example")
        client.sendmail(
            f"alice@{DOMAIN}",
            [f"bob@{DOMAIN}"],
            raw,
            mail_options=["RET=HDRS", "ENVID=mw-test-envid"],
            rcpt_options=["NOTIFY=SUCCESS", f"ORCPT=rfc822;bob@{DOMAIN}"],
        )
    _delivered(gateway, "bob", mid)

    def report() -> list[object]:
        return [
            m
            for m in gateway.postfix.mailbox("alice")
            if "mw-test-envid" in m.as_string()  # type: ignore[attr-defined]
        ]

    wait_until(report, 30, "the delivery status notification")
    text = report()[0].as_string()  # type: ignore[attr-defined]
    assert "Action: delivered" in text
    assert "Original-Envelope-Id: mw-test-envid" in text


def test_smtputf8_and_8bit_mail_pass_through(gateway: Gateway) -> None:
    import smtplib

    sender = "jürgen@remote.example"
    raw = (
        f"From: {sender}\r\nTo: alice@{DOMAIN}\r\nSubject: grüße\r\n"
        "Message-ID: <utf8-test@client.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Grüße aus Köln.\r\n"
    ).encode()
    with smtplib.SMTP("127.0.0.1", gateway.port("filtered"), timeout=60) as client:
        client.ehlo("orig-client.example")
        client.sendmail(
            sender, [f"alice@{DOMAIN}"], raw, mail_options=["SMTPUTF8", "BODY=8BITMIME"]
        )
    _delivered(gateway, "alice", "<utf8-test@client.example>")
    box = gateway.postfix.mail_dir / "alice" / "new"
    (data,) = [
        f.read_bytes() for f in box.iterdir() if b"<utf8-test@client.example>" in f.read_bytes()
    ]
    assert f"Return-Path: <{sender}>\n".encode() in data
    assert "Subject: grüße\n".encode() in data
    assert "Grüße aus Köln.\n".encode() in data
    assert b"X-Virus-Status: Clean\n" in data
