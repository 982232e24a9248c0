"""Release: the HMAC mark, the secret file, and re-injection into a real SMTP server."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message as EmailMessage
from pathlib import Path

import pytest

from intercept.harness import Stack, free_port, wait_until
from intercept.mail import make_message
from mailwarden.actions import ReleaseError, add_mark, carry_out, check_mark, load_secret, release
from mailwarden.config import defaults
from mailwarden.message import Envelope, Message
from mailwarden.policy import ActionKind, Mode, Policy, decide
from mailwarden.store import QuarantineFilter, QuarantineId, SqliteStore
from mailwarden.verdict import Finding, Status, Verdict
from support.postfix import DOMAIN, POSTFIX, REMOTE, PostfixInstance, submit_local
from support.smtp_sink import smtp_sink
from support.tools import missing

EICAR_RAW = (
    b"From: attacker@evil.example\r\nTo: bob@local.example\r\nSubject: test\r\n\r\n"
    b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*\r\n"
)
EICAR = Verdict(Status.INFECTED, (Finding("Eicar-Test-Signature", "", "clamav"),))
SECRET = b"s" * 64
QID = QuarantineId("0123456789abcdef0123456789abcdef")
NOW = 1_700_000_000.0


def test_mark_verifies_after_an_mta_prepends_trace_headers_and_changes_line_ends() -> None:
    marked = add_mark(EICAR_RAW, QID, SECRET, NOW)
    assert marked.startswith(b"X-Mailwarden-Release: v=1; id=" + QID.encode())
    relayed = b"Received: from localhost by mx\n\tfor <bob>\n" + marked.replace(b"\r\n", b"\n")
    mark = check_mark(relayed, SECRET, now=NOW + 60, max_age=3600)
    assert mark is not None and mark.qid == QID


@pytest.mark.parametrize(
    "tamper",
    [
        lambda m: m.replace(b"Subject: test", b"Subject: tesT"),  # content changed
        lambda m: m.replace(b"EICAR", b"EICAX"),  # body changed
        lambda m: (
            m[: m.index(b"\r\n") + 2] + b"From: x\r\n\r\nother mail\r\n"
        ),  # mark copied onto another message
    ],
)
def test_altered_or_transplanted_marks_do_not_verify(tamper) -> None:  # type: ignore[no-untyped-def]
    marked = add_mark(EICAR_RAW, QID, SECRET, NOW)
    changed = tamper(marked)
    assert changed != marked
    assert check_mark(changed, SECRET, now=NOW, max_age=3600) is None


def test_forged_marks_wrong_secret_and_expiry() -> None:
    marked = add_mark(EICAR_RAW, QID, SECRET, NOW)
    assert check_mark(marked, b"t" * 64, now=NOW, max_age=3600) is None
    assert check_mark(marked, SECRET, now=NOW + 3601, max_age=3600) is None
    assert check_mark(marked, SECRET, now=NOW - 3600, max_age=3600) is None  # from the future
    forged = (
        b"X-Mailwarden-Release: v=1; id="
        + QID.encode()
        + b"; t=1700000000; mac="
        + b"0" * 64
        + b"\r\n"
        + EICAR_RAW
    )
    assert check_mark(forged, SECRET, now=NOW, max_age=3600) is None
    # a mark in the body is not a mark
    assert check_mark(b"Subject: x\r\n\r\n" + marked, SECRET, now=NOW, max_age=3600) is None


def test_marking_twice_keeps_one_mark() -> None:
    twice = add_mark(add_mark(EICAR_RAW, QID, SECRET, NOW), QID, SECRET, NOW + 5)
    assert twice.count(b"X-Mailwarden-Release") == 1
    assert check_mark(twice, SECRET, now=NOW + 5, max_age=60) is not None


def test_secret_file_is_created_private_and_a_readable_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "release.key"
    with pytest.raises(ReleaseError, match="does not exist"):
        load_secret(path)
    secret = load_secret(path, create=True)
    assert len(secret) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(path) == secret
    os.chmod(path, 0o644)
    with pytest.raises(ReleaseError, match="chmod 600"):
        load_secret(path)


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "s.db", tmp_path / "spool")


def test_release_arrives_once_and_is_not_quarantined_again(store: SqliteStore) -> None:
    envelope = Envelope(
        "attacker@evil.example", ("bob@local.example", "ann@local.example"), agent="smtp-filter"
    )
    policy = Policy.from_config(defaults())
    first = decide(EICAR, Message(EICAR_RAW, envelope), policy, mode=Mode.AFTER_QUEUE)
    done = carry_out(
        Message(EICAR_RAW, envelope), EICAR, first, store=store, host="mx", emit_log=False
    )
    assert (
        first.kind is ActionKind.QUARANTINE
        and done.quarantine_id is not None
        and not done.deliveries
    )
    qid = done.quarantine_id

    with smtp_sink() as (sink, port):
        sink.refuse.add("ann@local.example")
        result = asyncio.run(
            release(store, qid, secret=SECRET, host="127.0.0.1", port=port, timeout=10)
        )
    assert len(sink.messages) == 1
    got = sink.messages[0]
    assert got.sender == "attacker@evil.example" and got.recipients == ["bob@local.example"]
    assert result.accepted == ("bob@local.example",) and "ann@local.example" in result.refused
    assert store.get(qid).released is not None and store.get(qid).released_to == (
        "bob@local.example",
    )

    # the released copy comes back through the filter: verified, accepted, not stored again
    mark = check_mark(got.data, SECRET, now=store.get(qid).released or 0, max_age=3600)
    assert mark is not None and mark.qid == qid
    again = decide(EICAR, Message(got.data, envelope), policy, mode=Mode.AFTER_QUEUE, released=True)
    redone = carry_out(
        Message(got.data, envelope), EICAR, again, store=store, host="mx", emit_log=False
    )
    assert again.kind is ActionKind.ACCEPT and redone.quarantine_id is None
    assert len(store.entries(QuarantineFilter())) == 1
    delivered = redone.deliveries[0][0]
    assert b"X-Mailwarden-Release" not in delivered
    assert b"X-Virus-Status: Infected (Eicar-Test-Signature)" in delivered
    assert [e.action for e in store.events()] == ["accept", "release", "quarantine"]


def test_release_to_chosen_recipients_and_null_sender(store: SqliteStore) -> None:
    qid = store.put(EICAR_RAW, Envelope("", ("bob@local.example",)), EICAR, "r")
    with smtp_sink() as (sink, port):
        asyncio.run(
            release(
                store,
                qid,
                secret=SECRET,
                host="127.0.0.1",
                port=port,
                recipients=["admin@local.example"],
            )
        )
    assert [(m.sender, m.recipients) for m in sink.messages] == [
        ("<>", ["admin@local.example"])
    ] or [(m.sender, m.recipients) for m in sink.messages] == [("", ["admin@local.example"])]


def test_release_failures_are_clear_and_leave_the_entry_unreleased(store: SqliteStore) -> None:
    qid = store.put(EICAR_RAW, Envelope("a@x.example", ("bob@local.example",)), EICAR, "r")
    with smtp_sink() as (sink, port):
        sink.refuse.add("bob@local.example")
        with pytest.raises(ReleaseError, match="refused"):
            asyncio.run(release(store, qid, secret=SECRET, host="127.0.0.1", port=port))
        free_port = port
    with pytest.raises(ReleaseError, match=r"cannot reach|refused"):
        asyncio.run(release(store, qid, secret=SECRET, host="127.0.0.1", port=free_port, timeout=5))
    assert store.get(qid).released is None and sink.messages == []


# --- release through the MTA's own sendmail program --------------------------------------


@dataclass
class LocalMta:
    postfix: PostfixInstance
    stack: Stack

    def quarantined(self) -> list[dict[str, object]]:
        entries: list[dict[str, object]] = json.loads(
            self.stack.cli("quarantine", "list", "--json").stdout
        )
        return entries

    def delivered(self, user: str, mid: str) -> list[EmailMessage]:
        return [m for m in self.postfix.mailbox(user) if m["Message-ID"] == mid]


@pytest.fixture(scope="module")
def local_mta() -> Iterator[LocalMta]:
    """Postfix filtering everything it takes in, sendmail's pickup included, through
    smtp-filter; the release goes in through Postfix's own sendmail."""
    if not Path(POSTFIX).exists() or os.geteuid() != 0:
        missing("a private Postfix instance needs postfix and root")
    root = Path(tempfile.mkdtemp(prefix="mwrel-"))
    root.chmod(0o755)
    postfix = PostfixInstance.create_on_free_ports(root / "postfix", relay_port=free_port())
    ports = postfix.ports
    main_cf = postfix.config_dir / "main.cf"
    scan_everything = f"content_filter = scan:[127.0.0.1]:{ports['filter']}\n"
    main_cf.write_text(main_cf.read_text() + scan_everything)
    stack = Stack.create(root / "mw")
    text = stack.config.read_text().replace(
        "[release]\n", '[release]\nmethod = "sendmail"\nsendmail_path = "/usr/sbin/sendmail"\n'
    )
    stack.config.write_text(text)
    os.environ["MAIL_CONFIG"] = str(postfix.config_dir)  # sendmail finds this instance
    try:
        postfix.start()
        stack.start_daemon()
        reinject = f"127.0.0.1:{ports['reinject']}"
        stack.start_agent("filter", "smtp-filter", ports["filter"], "--downstream", reinject)
        yield LocalMta(postfix, stack)
    finally:
        os.environ.pop("MAIL_CONFIG", None)
        stack.stop_all()
        postfix.stop()
        shutil.rmtree(root, ignore_errors=True)


def _quarantine(mta: LocalMta, sender: str = f"someone@{REMOTE}") -> tuple[str, str]:
    before = {e["id"] for e in mta.quarantined()}
    raw, mid = make_message(sender=sender, to=f"alice@{DOMAIN}", attachment=EICAR_RAW)
    submit_local(mta.postfix, raw, sender, [f"alice@{DOMAIN}"])
    wait_until(lambda: {e["id"] for e in mta.quarantined()} - before, 60, "the quarantine")
    (qid,) = {e["id"] for e in mta.quarantined()} - before
    return str(qid), mid


def test_release_by_sendmail_is_delivered_once_and_not_quarantined_again(
    local_mta: LocalMta,
) -> None:
    qid, mid = _quarantine(local_mta)
    assert not local_mta.delivered("alice", mid)
    before = {e["id"] for e in local_mta.quarantined()}
    done = local_mta.stack.cli("quarantine", "release", qid, "--json")
    assert json.loads(done.stdout)["accepted"] == [f"alice@{DOMAIN}"]
    wait_until(lambda: local_mta.delivered("alice", mid), 60, "the released message")
    (msg,) = local_mta.delivered("alice", mid)
    assert msg["X-Virus-Status"].startswith("Infected")
    assert msg["X-Mailwarden-Release"] is None
    # to a chosen recipient, again: Postfix took it from sendmail, the filter passed it
    local_mta.stack.cli("quarantine", "release", qid, "--force", "--to", f"bob@{DOMAIN}")
    wait_until(lambda: local_mta.delivered("bob", mid), 60, "the copy for bob")
    wait_until(lambda: not local_mta.postfix.queue(), 60, "an empty Postfix queue")
    assert len(local_mta.delivered("alice", mid)) == 1
    assert {e["id"] for e in local_mta.quarantined()} == before  # nothing new


def test_release_by_sendmail_keeps_the_null_sender(local_mta: LocalMta) -> None:
    qid, mid = _quarantine(local_mta, sender="")
    local_mta.stack.cli("quarantine", "release", qid)
    wait_until(lambda: local_mta.delivered("alice", mid), 60, "the released bounce")
    (msg,) = local_mta.delivered("alice", mid)
    assert msg["Return-Path"] == "<>"


def test_release_by_sendmail_that_fails_exits_1_and_leaves_it_unreleased(
    local_mta: LocalMta, monkeypatch: pytest.MonkeyPatch
) -> None:
    qid, _ = _quarantine(local_mta)
    # Postfix's sendmail with a configuration folder that does not exist
    monkeypatch.setenv("MAIL_CONFIG", "/nonexistent-postfix-config")
    done = local_mta.stack.cli("quarantine", "release", qid, check=False)
    assert done.returncode == 1 and "/usr/sbin/sendmail exited with status" in done.stderr
    monkeypatch.setenv("MAIL_CONFIG", str(local_mta.postfix.config_dir))
    entry = json.loads(local_mta.stack.cli("quarantine", "show", qid, "--json").stdout)
    assert entry["released"] is None


def test_a_missing_sendmail_program_is_a_clear_release_error(store: SqliteStore) -> None:
    qid = store.put(EICAR_RAW, Envelope("a@x.example", ("bob@local.example",)), EICAR, "r")
    with pytest.raises(ReleaseError, match="cannot run /nonexistent/sendmail"):
        asyncio.run(
            release(
                store, qid, secret=SECRET, method="sendmail", sendmail_path="/nonexistent/sendmail"
            )
        )
    assert store.get(qid).released is None
