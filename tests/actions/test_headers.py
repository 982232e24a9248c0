"""rewrite(): byte-preserving header edits, subject tags, forged status headers."""

from __future__ import annotations

import email
import email.policy

from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.actions import apply_action, rewrite, scanned_value
from mailwarden.config import defaults
from mailwarden.engine.mime import decode_rfc2047
from mailwarden.message import Envelope, Message
from mailwarden.policy import Mode, Policy, decide
from mailwarden.verdict import Status, Verdict

BODY = b"line one\r\nX-Virus-Status: Clean\r\n\r\nstill body\r\n"
MSG = (
    b"Received: from a by b\r\n"
    b"X-Virus-Status: Clean\r\n"
    b"Subject: =?utf-8?b?w6l0w6k=?=\r\n"
    b"x-virus-scanned: forged\r\n"
    b"\tcontinued forged line\r\n"
    b"From: a@x.example\r\n"
    b"\r\n" + BODY
)


def subjects(raw: bytes) -> list[str]:
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    return [decode_rfc2047(str(v)) for v in msg.get_all("Subject", [])]


def test_adds_first_strips_forged_and_keeps_the_body_byte_for_byte() -> None:
    out = rewrite(
        MSG,
        add=[("X-Virus-Scanned", "mailwarden 0.1.0 on mx"), ("X-Virus-Status", "Infected (Eicar)")],
        strip=("X-Virus-Status", "X-Virus-Scanned"),
    )
    assert out.startswith(
        b"X-Virus-Scanned: mailwarden 0.1.0 on mx\r\nX-Virus-Status: Infected (Eicar)\r\n"
    )
    assert out.endswith(b"\r\n\r\n" + BODY)
    head = out[: out.index(b"\r\n\r\n")]
    assert b"forged" not in head and head.count(b"X-Virus-Status") == 1
    assert b"Received: from a by b\r\n" in head and b"Subject: =?utf-8?b?w6l0w6k=?=\r\n" in head


def test_subject_tag_keeps_encoded_words_and_is_idempotent() -> None:
    once = rewrite(MSG, subject_tag="***VIRUS***")
    assert b"Subject: ***VIRUS*** =?utf-8?b?w6l0w6k=?=\r\n" in once
    assert subjects(once) == ["***VIRUS*** été"]
    assert rewrite(once, subject_tag="***VIRUS***") == once


def test_missing_subject_is_added_and_lf_messages_stay_lf() -> None:
    raw = b"From: a@x.example\nTo: b@y.example\n\nbody\n"
    out = rewrite(raw, add=[("X-Virus-Status", "Clean")], subject_tag="[unscanned]")
    head = b"X-Virus-Status: Clean\nFrom: a@x.example\nTo: b@y.example\nSubject: [unscanned]\n"
    assert out == head + b"\nbody\n"


def test_headers_only_message_without_final_newline() -> None:
    out = rewrite(b"From: a@x.example", subject_tag="T")
    assert out == b"From: a@x.example\nSubject: T\n"


def test_non_ascii_tag_becomes_an_encoded_word() -> None:
    out = rewrite(b"Subject: hello\r\n\r\nb", subject_tag="[vírus]")
    assert out.isascii()
    assert subjects(out) == ["[vírus] hello"]


def test_folded_and_empty_subjects() -> None:
    folded = rewrite(b"Subject: part one\r\n part two\r\nFrom: x\r\n\r\nb", subject_tag="TAG")
    assert folded == b"Subject: TAG part one\r\n part two\r\nFrom: x\r\n\r\nb"
    empty = rewrite(b"Subject:\r\nFrom: x\r\n\r\nb", subject_tag="TAG")
    assert empty == b"Subject: TAG\r\nFrom: x\r\n\r\nb"
    long = rewrite(b"Subject: " + b"x" * 990 + b"\r\n\r\nb", subject_tag="TAG")
    assert all(len(line) <= 998 for line in long.split(b"\r\n"))
    assert long.startswith(b"Subject: TAG\r\n xxx")


def test_mbox_from_line_stays_first() -> None:
    out = rewrite(b"From a@x Mon Jan  1 00:00:00 2024\nSubject: s\n\nb\n", add=[("X-A", "1")])
    assert out == b"From a@x Mon Jan  1 00:00:00 2024\nX-A: 1\nSubject: s\n\nb\n"


def test_values_cannot_inject_lines() -> None:
    out = rewrite(
        b"Subject: s\r\n\r\nb",
        add=[("X-Virus-Status", "Infected (x)\r\nX-Evil: 1")],
        subject_tag="a\r\nX-Evil: 2",
    )
    assert b"\r\nX-Evil" not in out


def test_apply_action_from_a_decision() -> None:
    verdict = Verdict(Status.UNSCANNED, reason="encrypted archive")
    action = decide(
        verdict,
        Message(MSG, Envelope("a@x", ("b@y",))),
        Policy.from_config(defaults()),
        mode=Mode.AFTER_QUEUE,
    )
    out = apply_action(MSG, action, action.whole, host="mx1.example.org")
    assert out.startswith(
        b"X-Virus-Scanned: " + scanned_value("mx1.example.org").encode() + b"\r\n"
    )
    assert b"X-Virus-Status: Unscanned (encrypted archive)\r\n" in out
    assert subjects(out) == ["***UNSCANNED*** été"]
    assert b"Clean" not in out[: out.index(b"\r\n\r\n")]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400).map(lambda b: b + b"\n"))
def test_adding_then_stripping_our_field_is_the_same_as_only_stripping(raw: bytes) -> None:
    added = rewrite(raw, add=[("X-Virus-Status", "Clean")], strip=("X-Virus-Status",))
    assert added.count(b"X-Virus-Status: Clean") >= 1
    assert rewrite(added, strip=("X-Virus-Status",)) == rewrite(raw, strip=("X-Virus-Status",))
    assert len(rewrite(raw)) == len(raw) and rewrite(raw) == raw
