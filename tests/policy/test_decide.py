"""decide(): defaults, modes, SMTP replies, headers and its safety properties."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st
from policy_helpers import message, verdict

from mailwarden.config import Config, defaults
from mailwarden.message import Direction, Envelope, Message, Point
from mailwarden.policy import ActionKind, Mode, Policy, decide, virus_status
from mailwarden.verdict import Category, Finding, Status, Verdict

DEFAULT = Policy.from_config(defaults())
MakeConfig = Callable[[str], Config]


def test_infected_is_rejected_with_the_signature_name_before_the_queue() -> None:
    action = decide(
        verdict(Status.INFECTED), message("a@local.example"), DEFAULT, mode=Mode.BEFORE_QUEUE
    )
    assert action.kind is ActionKind.REJECT
    assert str(action.reply) == "554 5.7.1 Infected: Eicar-Test-Signature"
    assert action.reply.permanent


def test_infected_is_quarantined_not_bounced_after_the_queue() -> None:
    action = decide(
        verdict(Status.INFECTED), message("a@local.example"), DEFAULT, mode=Mode.AFTER_QUEUE
    )
    assert action.kind is ActionKind.QUARANTINE
    assert action.keep_copy
    assert action.reply.code == 250
    assert not action.whole.delivers


def test_after_queue_reject_can_discard_or_bounce(make_config: MakeConfig) -> None:
    msg = message("a@local.example")
    discard = decide(
        verdict(Status.INFECTED),
        msg,
        make_config('[policy]\nafter_queue_reject = "discard"\n'),
        mode=Mode.AFTER_QUEUE,
    )
    assert discard.kind is ActionKind.DISCARD and not discard.keep_copy
    bounce = decide(
        verdict(Status.INFECTED),
        msg,
        make_config('[policy]\nafter_queue_reject = "bounce"\n'),
        mode=Mode.AFTER_QUEUE,
    )
    assert bounce.kind is ActionKind.REJECT
    kept = decide(
        verdict(Status.INFECTED),
        msg,
        make_config("[policy]\nkeep_rejected = true\n"),
        mode=Mode.BEFORE_QUEUE,
    )
    assert kept.kind is ActionKind.REJECT and kept.keep_copy


def test_mode_defaults_from_the_agent_name() -> None:
    proxy = message("a@b.example", agent="milter")
    filt = message("a@b.example", agent="smtp-filter")
    assert decide(verdict(Status.INFECTED), proxy, DEFAULT).kind is ActionKind.REJECT
    assert decide(verdict(Status.INFECTED), filt, DEFAULT).kind is ActionKind.QUARANTINE


def test_unscanned_is_tagged_and_delivered_by_default() -> None:
    action = decide(
        verdict(Status.UNSCANNED, reason="encrypted archive"), message("a@b.example"), DEFAULT
    )
    assert action.kind is ActionKind.TAG
    assert action.whole.delivers
    assert action.whole.subject_tag == "***UNSCANNED***"
    assert action.status == "Unscanned (encrypted archive)"


def test_error_defers_with_a_temporary_reply() -> None:
    action = decide(
        verdict(Status.ERROR, reason="daemon unreachable"), message("a@b.example"), DEFAULT
    )
    assert action.kind is ActionKind.DEFER
    assert str(action.reply) == "451 4.7.1 Scanning temporarily unavailable"
    assert action.reply.temporary


def test_clean_is_accepted_with_status_header() -> None:
    action = decide(Verdict(Status.CLEAN), message("a@b.example"), DEFAULT)
    assert action.kind is ActionKind.ACCEPT and action.status == "Clean"
    assert action.add_headers and "X-Virus-Status" in action.strip


def test_released_message_is_accepted_whatever_the_verdict() -> None:
    action = decide(
        verdict(Status.INFECTED),
        message("a@b.example"),
        DEFAULT,
        mode=Mode.AFTER_QUEUE,
        released=True,
    )
    assert action.kind is ActionKind.ACCEPT and not action.keep_copy
    assert action.status == "Infected (Eicar-Test-Signature)"


def test_status_header_values() -> None:
    assert virus_status(Verdict(Status.CLEAN)) == "Clean"
    assert (
        virus_status(verdict(Status.SUSPICIOUS, "Heuristics.Exe")) == "Suspicious (Heuristics.Exe)"
    )
    assert (
        virus_status(verdict(Status.ERROR, reason="timeout")) == "Unscanned (scan error: timeout)"
    )
    mixed = Verdict(
        Status.INFECTED,
        (Finding("H.x", "", "heuristics", Category.SUSPICIOUS), Finding("Real", "", "clamav")),
    )
    assert virus_status(mixed) == "Infected (Real)"


def test_names_with_line_breaks_cannot_inject_into_replies_or_headers() -> None:
    evil = verdict(Status.INFECTED, "Bad\r\n250 2.0.0 Ok\r\nX-Virus-Status: Clean")
    action = decide(evil, message("a@b.example"), DEFAULT, mode=Mode.BEFORE_QUEUE)
    assert "\r" not in str(action.reply) and "\n" not in str(action.reply)
    assert "\n" not in action.status and "\r" not in action.status


def test_per_recipient_outcomes_and_fold(make_config: MakeConfig) -> None:
    cfg = make_config(
        '[[policy.override]]\nrecipients = ["lab@local.example"]\ninfected = "accept"\n'
    )
    msg = message("lab@local.example", "bob@local.example")
    action = decide(verdict(Status.INFECTED), msg, cfg, mode=Mode.BEFORE_QUEUE)
    assert action.for_recipient("LAB@local.example").kind is ActionKind.ACCEPT
    assert action.for_recipient("bob@local.example").kind is ActionKind.REJECT
    assert action.kind is ActionKind.REJECT
    assert action.delivered_to() == ("lab@local.example",)
    assert {r for _, rs in action.groups() for r in rs} == set(msg.envelope.recipients)


def test_no_recipients_still_gives_an_answer() -> None:
    action = decide(
        verdict(Status.INFECTED), Message(b"x", Envelope()), DEFAULT, mode=Mode.BEFORE_QUEUE
    )
    assert action.outcomes == () and action.kind is ActionKind.REJECT


def test_mda_point_uses_inbound_policy(make_config: MakeConfig) -> None:
    cfg = make_config('[policy]\ninbound_unscanned = "quarantine"\n')
    msg = message("a@b.example", point=Point.MDA)
    assert decide(verdict(Status.UNSCANNED, reason="r"), msg, cfg).kind is ActionKind.QUARANTINE
    assert decide(verdict(Status.UNSCANNED, reason="r"), msg, cfg).direction is Direction.INBOUND
    out = message("a@b.example", direction=Direction.OUTBOUND)
    assert decide(verdict(Status.UNSCANNED, reason="r"), out, cfg).kind is ActionKind.TAG


# -- properties ------------------------------------------------------------------

ACTIONS = st.sampled_from([k.value for k in ActionKind])
ADDRESSES = st.sampled_from(
    ["a@local.example", "b@local.example", "c@remote.example", "d@sub.local.example"]
)
STATUSES = st.sampled_from(list(Status))


@st.composite
def configs(draw: st.DrawFn) -> Policy:
    cfg = defaults()
    for cat in ("infected", "suspicious", "unscanned", "error"):
        if draw(st.booleans()):
            cfg.values["policy"][cat] = draw(ACTIONS)
        for d in ("inbound", "outbound"):
            if draw(st.booleans()):
                cfg.values["policy"][f"{d}_{cat}"] = draw(ACTIONS)
    cfg.values["policy"]["after_queue_reject"] = draw(
        st.sampled_from(["quarantine", "discard", "bounce"])
    )
    cfg.values["policy"]["override"] = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "recipients": st.lists(
                        st.sampled_from(["a@local.example", "local.example", ".local.example"]),
                        min_size=1,
                    )
                },
                optional={c: ACTIONS for c in ("infected", "suspicious", "unscanned", "error")},
            ),
            max_size=3,
        )
    )
    return Policy.from_config(cfg)


@st.composite
def envelopes(draw: st.DrawFn) -> Envelope:
    return Envelope(
        sender=draw(ADDRESSES),
        recipients=tuple(draw(st.lists(ADDRESSES, max_size=4))),
        client_address=draw(st.sampled_from([None, "127.0.0.1", "203.0.113.9", "garbage"])),
        auth_user=draw(st.sampled_from([None, "alice"])),
        agent=draw(st.sampled_from(["milter", "smtp-filter", "mda"])),
    )


def _verdict(status: Status) -> Verdict:
    return verdict(status, reason="why")


@settings(max_examples=300, deadline=None)
@given(status=STATUSES, envelope=envelopes(), mode=st.sampled_from(list(Mode)))
def test_defaults_never_deliver_infected_or_suspicious_and_error_defers(
    status: Status, envelope: Envelope, mode: Mode
) -> None:
    action = decide(_verdict(status), Message(b"", envelope), DEFAULT, mode=mode)
    if status in (Status.INFECTED, Status.SUSPICIOUS):
        assert not action.whole.delivers
        assert all(not o.delivers for _, o in action.outcomes)
    if status is Status.ERROR:
        assert action.kind is ActionKind.DEFER
    if status is Status.CLEAN:
        assert action.kind is ActionKind.ACCEPT


@settings(max_examples=300, deadline=None)
@given(policy=configs(), status=STATUSES, envelope=envelopes(), mode=st.sampled_from(list(Mode)))
def test_infected_is_delivered_only_where_accept_or_tag_is_configured(
    policy: Policy, status: Status, envelope: Envelope, mode: Mode
) -> None:
    configured = {
        policy.categories["infected"],
        *(k for (_, c), k in policy.directions.items() if c == "infected"),
    }
    configured |= {o.action_for("infected") for o in policy.overrides} - {None}  # type: ignore[arg-type]
    action = decide(_verdict(Status.INFECTED), Message(b"", envelope), policy, mode=mode)
    if not configured & {ActionKind.ACCEPT, ActionKind.TAG}:
        assert not action.whole.delivers
    # reply class always matches the kind
    for outcome in [action.whole, *(o for _, o in action.outcomes)]:
        assert outcome.reply.permanent == (outcome.kind is ActionKind.REJECT)
        assert outcome.reply.temporary == (outcome.kind is ActionKind.DEFER)
        if mode is Mode.AFTER_QUEUE and policy.after_queue_reject != "bounce":
            assert outcome.kind is not ActionKind.REJECT


@settings(max_examples=200, deadline=None)
@given(policy=configs(), status=STATUSES, envelope=envelopes(), mode=st.sampled_from(list(Mode)))
def test_decide_is_deterministic_and_whole_is_the_strictest(
    policy: Policy, status: Status, envelope: Envelope, mode: Mode
) -> None:
    from mailwarden.policy import STRICTNESS

    first = decide(_verdict(status), Message(b"", envelope), policy, mode=mode)
    again = decide(_verdict(status), Message(b"", envelope), policy, mode=mode)
    assert first == again
    if first.outcomes:
        assert STRICTNESS[first.kind] == max(STRICTNESS[o.kind] for _, o in first.outcomes)
        assert first.keep_copy == any(o.keep_copy for _, o in first.outcomes)
        assert [r for r, _ in first.outcomes] == list(envelope.recipients)
