"""carry_out(): what is stored, delivered, recorded and logged for each action."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailwarden.actions import carry_out, log_line, log_record
from mailwarden.config import defaults, load_config
from mailwarden.message import Envelope, Message
from mailwarden.policy import ActionKind, Mode, Policy, decide
from mailwarden.store import QuarantineFilter, SqliteStore, StoreError
from mailwarden.verdict import Finding, Status, Verdict

RAW = b"Subject: report\r\nX-Virus-Status: Clean\r\n\r\nbody\r\n"
ENV = Envelope(
    "a@remote.example", ("lab@local.example", "bob@local.example"), queue_id="4XyZ", agent="lmtp"
)
EICAR = Verdict(
    Status.INFECTED,
    (Finding("Eicar-Test-Signature", "1/eicar\x1b[31m.com", "clamav"),),
    timings={"scan": 0.5},
)


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    cfg = tmp_path / "m.toml"
    cfg.write_text('[[policy.override]]\nrecipients = ["lab@local.example"]\ninfected = "tag"\n')
    return Policy.from_config(load_config(cfg))


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "s.db", tmp_path / "spool")


def test_per_recipient_delivery_and_quarantine(policy: Policy, store: SqliteStore) -> None:
    message = Message(RAW, ENV)
    action = decide(EICAR, message, policy, mode=Mode.AFTER_QUEUE)
    done = carry_out(
        message, EICAR, action, store=store, host="mx1", timings={"total": 0.75}, emit_log=False
    )
    assert action.for_recipient("bob@local.example").kind is ActionKind.QUARANTINE
    assert done.quarantine_id is not None
    assert store.read(done.quarantine_id) == RAW  # stored as received, before any change
    [(delivered, rcpts)] = done.deliveries
    assert rcpts == ("lab@local.example",)
    assert b"Subject: ***VIRUS*** report" in delivered
    assert b"X-Virus-Status: Infected (Eicar-Test-Signature)" in delivered
    assert b"Clean" not in delivered
    [event] = store.events()
    assert (event.status, event.action, event.quarantine_id) == (
        "infected",
        "quarantine",
        done.quarantine_id,
    )
    assert event.timings == {"scan": 0.5, "total": 0.75}
    # no client information, local-looking recipients unknown to [network]: direction unknown
    assert event.envelope.direction.value == action.direction.value == "unknown"


def test_log_line_is_one_json_line_with_the_essentials(policy: Policy) -> None:
    message = Message(RAW, ENV)
    action = decide(EICAR, message, policy, mode=Mode.AFTER_QUEUE)
    line = log_line(
        log_record(message, EICAR, action, timings={"total": 0.75}, quarantine_id="ab" * 16)
    )
    assert "\n" not in line and "\x1b" not in line
    record = json.loads(line)
    assert record["queue_id"] == "4XyZ"
    assert record["envelope"]["recipients"] == list(ENV.recipients)
    assert record["verdict"]["findings"][0]["name"] == "Eicar-Test-Signature"
    assert record["action"] == "quarantine" and record["reply"].startswith("250 ")
    assert record["recipients"] == {"lab@local.example": "tag", "bob@local.example": "quarantine"}
    assert record["timings"] == {"scan": 0.5, "total": 0.75}
    assert record["quarantine_id"] == "ab" * 16


def test_rejected_mail_is_neither_delivered_nor_stored(store: SqliteStore) -> None:
    message = Message(RAW, ENV)
    action = decide(EICAR, message, Policy.from_config(defaults()), mode=Mode.BEFORE_QUEUE)
    done = carry_out(message, EICAR, action, store=store, host="mx1", emit_log=False)
    assert action.kind is ActionKind.REJECT
    assert done.deliveries == () and done.quarantine_id is None
    assert store.entries(QuarantineFilter()) == []
    assert [e.action for e in store.events()] == ["reject"]


def test_clean_mail_without_store_or_recipients() -> None:
    message = Message(RAW, Envelope())
    action = decide(Verdict(Status.CLEAN), message, Policy.from_config(defaults()))
    done = carry_out(message, Verdict(Status.CLEAN), action, store=None, host="mx1", emit_log=False)
    [(delivered, rcpts)] = done.deliveries
    assert (
        rcpts == ()
        and delivered.count(b"X-Virus-Status") == 1
        and b"X-Virus-Status: Clean" in delivered
    )


def test_a_history_failure_neither_defers_nor_loses_the_quarantine_copy(
    policy: Policy, store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(event: object) -> None:
        raise StoreError("PostgreSQL server db port 5432: connection refused")

    monkeypatch.setattr(store, "record_event", down)
    message = Message(RAW, ENV)
    action = decide(EICAR, message, policy, mode=Mode.AFTER_QUEUE)
    done = carry_out(message, EICAR, action, store=store, host="mx1", emit_log=False)
    assert done.quarantine_id is not None and store.read(done.quarantine_id) == RAW
    assert len(store.entries(QuarantineFilter())) == 1
    assert done.deliveries and done.action.whole.kind is not ActionKind.DEFER


def test_a_quarantine_failure_raises_for_the_pipeline_to_defer(
    policy: Policy, store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*args: object) -> None:
        raise StoreError("PostgreSQL server db port 5432: connection refused")

    monkeypatch.setattr(store, "put", down)
    message = Message(RAW, ENV)
    action = decide(EICAR, message, policy, mode=Mode.AFTER_QUEUE)
    with pytest.raises(StoreError):
        carry_out(message, EICAR, action, store=store, host="mx1", emit_log=False)
