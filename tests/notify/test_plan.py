"""Who is told: administrator, held-back recipients, and the sender only when enabled."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailwarden.message import Direction
from mailwarden.notify import Notice, plan
from notify.helpers import (
    CLEAN,
    EICAR,
    HEURISTIC,
    RAW,
    VERDICTS,
    config,
    decided,
    message,
    settings,
)

QUARANTINE_ALL = """
[policy]
infected = "quarantine"
unscanned = "quarantine"
"""


def _plan(tmp_path: Path, verdict_name: str, extra: str = "", **kw: object) -> list[Notice]:
    cfg = config(tmp_path, extra)
    msg = message(**kw)  # type: ignore[arg-type]
    return plan(msg, decided(cfg, msg, VERDICTS[verdict_name]), settings(cfg))


def test_defaults_tell_the_admin_and_the_inbound_recipient_of_a_quarantined_virus(
    tmp_path: Path,
) -> None:
    notices = _plan(tmp_path, "infected", QUARANTINE_ALL)
    assert [(n.role, n.to) for n in notices] == [
        ("admin", "postmaster"),
        ("recipient", "bob@example.org"),
    ]
    assert {(n.category, n.direction) for n in notices} == {("infected", "inbound")}


def test_no_backscatter_by_default_even_when_the_sender_is_local(tmp_path: Path) -> None:
    for direction in (Direction.INBOUND, Direction.OUTBOUND):
        notices = _plan(tmp_path, "infected", QUARANTINE_ALL, direction=direction)
        assert all(n.role != "sender" for n in notices)


def test_sender_is_told_only_when_enabled_and_for_the_configured_direction(
    tmp_path: Path,
) -> None:
    extra = QUARANTINE_ALL + '\n[notify]\nsender_categories = ["infected"]\n'
    out = _plan(tmp_path, "infected", extra, direction=Direction.OUTBOUND, sender="me@example.org")
    assert ("sender", "me@example.org") in [(n.role, n.to) for n in out]
    inbound = _plan(tmp_path, "infected", extra, direction=Direction.INBOUND)
    assert all(n.role != "sender" for n in inbound)


def test_delivered_copies_do_not_notify_the_recipient(tmp_path: Path) -> None:
    notices = _plan(tmp_path, "infected", '[policy]\ninfected = "tag"\n')
    assert [n.role for n in notices] == ["admin"]


def test_only_held_recipients_are_told(tmp_path: Path) -> None:
    extra = QUARANTINE_ALL + (
        '\n[[policy.override]]\nrecipients = ["carol@example.org"]\ninfected = "tag"\n'
    )
    notices = _plan(tmp_path, "infected", extra, rcpts=("bob@example.org", "carol@example.org"))
    assert [n.to for n in notices if n.role == "recipient"] == ["bob@example.org"]


def test_outbound_recipients_are_not_told_by_default(tmp_path: Path) -> None:
    notices = _plan(
        tmp_path,
        "infected",
        QUARANTINE_ALL,
        direction=Direction.OUTBOUND,
        rcpts=("x@remote.example",),
    )
    assert [n.role for n in notices] == ["admin"]


@pytest.mark.parametrize(
    ("name", "roles"),
    [
        ("suspicious", ["recipient"]),  # quarantined by default; the admin hears of infected only
        ("unscanned", ["recipient"]),
        ("error", []),  # deferred: it comes back and is decided again
    ],
)
def test_categories_follow_the_configuration(tmp_path: Path, name: str, roles: list[str]) -> None:
    extra = '[policy]\nunscanned = "quarantine"\n'
    assert [n.role for n in _plan(tmp_path, name, extra)] == roles


def test_admin_categories_and_directions_are_configurable(tmp_path: Path) -> None:
    extra = '[notify]\nadmin = ["av@example.org"]\nadmin_categories = ["suspicious"]\n'
    extra += 'admin_directions = ["outbound"]\nrecipient_categories = []\n'
    assert _plan(tmp_path, "suspicious", extra, direction=Direction.INBOUND) == []
    out = _plan(tmp_path, "suspicious", extra, direction=Direction.OUTBOUND)
    assert [(n.role, n.to) for n in out] == [("admin", "av@example.org")]
    assert _plan(tmp_path, "infected", extra, direction=Direction.OUTBOUND) == []


def test_clean_mail_and_disabled_notifications_are_silent(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    msg = message()
    assert plan(msg, decided(cfg, msg, CLEAN), settings(cfg)) == []
    cfg = config(tmp_path, QUARANTINE_ALL + "[notify]\nenabled = false\n")
    assert plan(msg, decided(cfg, msg, EICAR), settings(cfg)) == []


@pytest.mark.parametrize(
    "raw",
    [
        b"Auto-Submitted: auto-replied\r\n" + RAW,
        b"auto-submitted:auto-generated; note=x\r\n" + RAW,
        b"X-Mailwarden-Notification: admin; category=infected\r\n" + RAW,
    ],
)
def test_loop_protection_for_automatic_messages(tmp_path: Path, raw: bytes) -> None:
    cfg = config(tmp_path, QUARANTINE_ALL)
    msg = message(raw)
    assert plan(msg, decided(cfg, msg, EICAR), settings(cfg)) == []


@pytest.mark.parametrize("sender", ["", "<>", " <> "])
def test_loop_protection_for_the_null_sender(tmp_path: Path, sender: str) -> None:
    cfg = config(tmp_path, QUARANTINE_ALL)
    msg = message(sender=sender)
    assert plan(msg, decided(cfg, msg, EICAR), settings(cfg)) == []


def test_auto_submitted_no_is_an_ordinary_message(tmp_path: Path) -> None:
    cfg = config(tmp_path, QUARANTINE_ALL)
    msg = message(b"Auto-Submitted: no\r\n" + RAW)
    assert len(plan(msg, decided(cfg, msg, EICAR), settings(cfg))) == 2


def test_an_auto_submitted_line_in_the_body_does_not_count(tmp_path: Path) -> None:
    cfg = config(tmp_path, QUARANTINE_ALL)
    msg = message(RAW + b"Auto-Submitted: auto-generated\r\n")
    assert len(plan(msg, decided(cfg, msg, EICAR), settings(cfg))) == 2


@pytest.mark.parametrize(
    "rcpt",
    ["bob@example.org\r\nBcc: victim@x", "a b@example.org", "-oQ/tmp@example.org>x", "<x>@y"],
)
def test_addresses_that_are_not_plain_get_no_notice(tmp_path: Path, rcpt: str) -> None:
    cfg = config(tmp_path, QUARANTINE_ALL)
    msg = message(rcpts=(rcpt,))
    notices = plan(msg, decided(cfg, msg, HEURISTIC), settings(cfg))
    assert all(n.role != "recipient" for n in notices)


def test_a_released_message_is_not_notified_about_again(tmp_path: Path) -> None:
    from mailwarden.policy import Mode, Policy, decide

    cfg = config(tmp_path, QUARANTINE_ALL)
    msg = message()
    action = decide(EICAR, msg, Policy.from_config(cfg), mode=Mode.AFTER_QUEUE, released=True)
    assert action.category == "infected" and action.released
    assert plan(msg, action, settings(cfg)) == []
