"""The shared pipeline: every failure becomes the error policy, answers fit the agent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mailwarden.actions import add_mark
from mailwarden.config import defaults, load_config
from mailwarden.daemon import DaemonUnavailable
from mailwarden.intercept.pipeline import Answer, Pipeline, shape
from mailwarden.message import Envelope, Message, Point
from mailwarden.policy import ActionKind, Mode, Policy, decide
from mailwarden.store import SqliteStore, new_id
from mailwarden.verdict import Finding, Status, Verdict

EICAR = Verdict(Status.INFECTED, (Finding("Eicar-Test-Signature", "1/eicar.com", "clamav"),))
RAW = b"Subject: hi\r\n\r\nbody\r\n"


class FakeScanner:
    def __init__(self, result: Verdict | BaseException) -> None:
        self.result = result
        self.calls = 0

    async def scan_bytes(
        self, data: bytes | memoryview, envelope: Envelope | None = None
    ) -> Verdict:
        self.calls += 1
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


def _message(*rcpts: str, raw: bytes = RAW) -> Message:
    return Message(raw, Envelope("s@remote.example", rcpts, point=Point.MTA, agent="smtp-filter"))


def _policy(tmp_path: Path, extra: str = "") -> Policy:
    cfg = tmp_path / "mw.toml"
    cfg.write_text(extra)
    return Policy.from_config(load_config(cfg))


def _pipeline(
    scanner: FakeScanner, policy: Policy, store: SqliteStore | None, **kw: object
) -> Pipeline:
    return Pipeline(scanner, policy, store=store, host="gw.test", **kw)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "db.sqlite3", tmp_path / "q")


@pytest.mark.parametrize(
    "failure",
    [DaemonUnavailable("down"), TimeoutError(), ConnectionResetError(), ValueError("bad input")],
)
def test_any_scan_failure_defers(failure: BaseException, store: SqliteStore) -> None:
    pipe = _pipeline(FakeScanner(failure), Policy.from_config(defaults()), store)
    done = asyncio.run(
        pipe.process(_message("u@test.example"), mode=Mode.AFTER_QUEUE, answer=Answer.PER_MESSAGE)
    )
    assert done.action.kind is ActionKind.DEFER
    assert str(done.action.reply).startswith("451 4.7.1")
    assert done.deliveries == ()


def test_store_failure_defers_instead_of_losing(tmp_path: Path) -> None:
    class BrokenStore(SqliteStore):
        def put(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]
            raise OSError("disk full")

    store = BrokenStore(tmp_path / "db.sqlite3", tmp_path / "q")
    pipe = _pipeline(FakeScanner(EICAR), Policy.from_config(defaults()), store)
    done = asyncio.run(
        pipe.process(_message("u@test.example"), mode=Mode.AFTER_QUEUE, answer=Answer.PER_MESSAGE)
    )
    assert done.action.kind is ActionKind.DEFER
    assert done.action.reply.temporary


def test_after_queue_reject_is_quarantined(store: SqliteStore) -> None:
    pipe = _pipeline(FakeScanner(EICAR), Policy.from_config(defaults()), store)
    done = asyncio.run(
        pipe.process(_message("u@test.example"), mode=Mode.AFTER_QUEUE, answer=Answer.PER_MESSAGE)
    )
    assert done.action.kind is ActionKind.QUARANTINE
    assert done.quarantine_id is not None
    assert store.read(done.quarantine_id) == RAW


def test_release_mark_verified_makes_it_accept(tmp_path: Path, store: SqliteStore) -> None:
    secret_file = tmp_path / "release.key"
    secret_file.write_text("k" * 64)
    secret_file.chmod(0o600)
    marked = add_mark(RAW, new_id(), b"k" * 64, now=1_000_000.0)
    pipe = _pipeline(
        FakeScanner(EICAR),
        Policy.from_config(defaults()),
        store,
        secret_file=secret_file,
        clock=lambda: 1_000_010.0,
    )
    done = asyncio.run(
        pipe.process(
            _message("u@test.example", raw=marked), mode=Mode.AFTER_QUEUE, answer=Answer.PER_MESSAGE
        )
    )
    assert done.action.kind is ActionKind.ACCEPT and done.action.released
    ((data, _),) = done.deliveries
    assert b"X-Mailwarden-Release" not in data
    # a forged mark (other secret) is scanned and decided like any message
    forged = add_mark(RAW, new_id(), b"z" * 64, now=1_000_000.0)
    done = asyncio.run(
        pipe.process(
            _message("u@test.example", raw=forged), mode=Mode.AFTER_QUEUE, answer=Answer.PER_MESSAGE
        )
    )
    assert done.action.kind is ActionKind.QUARANTINE


def test_shapes(tmp_path: Path) -> None:
    policy = _policy(
        tmp_path,
        '[[policy.override]]\nrecipients = ["b@x.example"]\ninfected = "tag"\n'
        '[[policy.override]]\nrecipients = ["c@x.example"]\ninfected = "defer"\n',
    )
    split = decide(EICAR, _message("a@x.example", "b@x.example"), policy, mode=Mode.AFTER_QUEUE)
    kinds = [o.kind for _, o in shape(split, Answer.PER_MESSAGE).outcomes]
    assert kinds == [ActionKind.QUARANTINE, ActionKind.TAG]  # both answer 250: keep apart
    one = [o.kind for _, o in shape(split, Answer.ONE_COPY).outcomes]
    assert one == [ActionKind.QUARANTINE, ActionKind.QUARANTINE]  # the strictest
    deferred = decide(EICAR, _message("a@x.example", "c@x.example"), policy, mode=Mode.AFTER_QUEUE)
    assert [o.kind for _, o in shape(deferred, Answer.PER_MESSAGE).outcomes] == [
        ActionKind.DEFER
    ] * 2
    assert [o.kind for _, o in shape(deferred, Answer.PER_RECIPIENT).outcomes] == [
        ActionKind.QUARANTINE,
        ActionKind.DEFER,
    ]
