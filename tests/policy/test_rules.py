"""Override precedence: address > domain > .domain > direction > category."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mailwarden.config import Config
from mailwarden.errors import ConfigError
from mailwarden.message import Direction
from mailwarden.policy import ActionKind, Policy

MakeConfig = Callable[[str], Config]

RULES = """
[policy]
infected = "reject"
inbound_infected = "quarantine"

[[policy.override]]
recipients = [".example.org"]
infected = "discard"

[[policy.override]]
recipients = ["example.org"]
infected = "tag"
unscanned = "reject"

[[policy.override]]
recipients = ["lab@example.org"]
infected = "accept"

[[policy.override]]
senders = ["scanner@partner.example", ".deep.example.org"]
infected = "defer"
"""


@pytest.fixture
def policy(make_config: MakeConfig) -> Policy:
    return Policy.from_config(make_config(RULES))


@pytest.mark.parametrize(
    ("recipient", "sender", "expected", "rule"),
    [
        (
            "lab@example.org",
            "x@y.example",
            ActionKind.ACCEPT,
            "policy.override[3] (recipient lab@example.org)",
        ),
        (
            "LAB@Example.ORG",
            "x@y.example",
            ActionKind.ACCEPT,
            "policy.override[3] (recipient lab@example.org)",
        ),
        (
            "bob@example.org",
            "x@y.example",
            ActionKind.TAG,
            "policy.override[2] (recipient example.org)",
        ),
        (
            "bob@mx.example.org",
            "x@y.example",
            ActionKind.DISCARD,
            "policy.override[1] (recipient .example.org)",
        ),
        # a sender address is more specific than a recipient domain
        (
            "bob@example.org",
            "scanner@partner.example",
            ActionKind.DEFER,
            "policy.override[4] (sender scanner@partner.example)",
        ),
        # a deeper .domain beats a shallower one
        (
            "bob@a.deep.example.org",
            "",
            ActionKind.DISCARD,
            "policy.override[1] (recipient .example.org)",
        ),
        (
            "bob@other.example",
            "s@a.deep.example.org",
            ActionKind.DEFER,
            "policy.override[4] (sender .deep.example.org)",
        ),
        ("bob@other.example", "x@y.example", ActionKind.QUARANTINE, "policy.inbound_infected"),
        ("bob@example.org.evil", "x@y.example", ActionKind.QUARANTINE, "policy.inbound_infected"),
    ],
)
def test_most_specific_override_wins(
    policy: Policy, recipient: str, sender: str, expected: ActionKind, rule: str
) -> None:
    assert policy.lookup("infected", Direction.INBOUND, sender, recipient) == (expected, rule)


def test_direction_then_category_default(policy: Policy) -> None:
    assert policy.lookup("infected", Direction.OUTBOUND, "", "z@z.example") == (
        ActionKind.REJECT,
        "policy.infected",
    )


def test_override_changes_only_the_categories_it_sets(policy: Policy) -> None:
    # override 3 sets only infected; unscanned falls through to the domain override
    assert (
        policy.lookup("unscanned", Direction.INBOUND, "", "lab@example.org")[0] is ActionKind.REJECT
    )
    assert policy.lookup("error", Direction.INBOUND, "", "lab@example.org")[0] is ActionKind.DEFER


def test_equal_specificity_recipient_beats_sender_then_file_order(make_config: MakeConfig) -> None:
    policy = Policy.from_config(
        make_config(
            '[[policy.override]]\nsenders = ["a@x.example"]\ninfected = "accept"\n'
            '[[policy.override]]\nrecipients = ["b@y.example"]\ninfected = "discard"\n'
            '[[policy.override]]\nrecipients = ["b@y.example"]\ninfected = "tag"\n'
        )
    )
    assert (
        policy.lookup("infected", Direction.INBOUND, "a@x.example", "b@y.example")[0]
        is ActionKind.DISCARD
    )


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        (
            '[[policy.override]]\nrecipients = ["a@b.example"]\ninfected = "maybe"\n',
            3,
            "policy.override[1].infected",
            "must be one of",
        ),
        (
            '[[policy.override]]\nrecipients = ["a@b.example"]\ninfected = "tag"\n\n'
            '[[policy.override]]\nsenders = ["c.example"]\n',
            5,
            "policy.override[2]",
            "sets no action",
        ),
        (
            '[[policy.override]]\ninfected = "tag"\n',
            1,
            "policy.override[1]",
            "needs recipients or senders",
        ),
        (
            '[[policy.override]]\nrecipients = ["a b"]\ninfected = "tag"\n',
            2,
            "policy.override[1].recipients",
            "not an address",
        ),
        (
            '[[policy.override]]\nrecipient = ["a@b.example"]\ninfected = "tag"\n',
            2,
            "policy.override[1].recipient",
            "unknown key",
        ),
        ("[policy]\noverride = 3\n", 2, "policy.override", "expected [[tables]]"),
        (
            '[network]\ntrusted_networks = ["10.0.0.0/33"]\n',
            2,
            "network.trusted_networks",
            "not an address",
        ),
        (
            '[network]\nlocal_domains = ["exa mple.org"]\n',
            2,
            "network.local_domains",
            "not a domain",
        ),
        ('[policy]\nerror = "ignore"\n', 2, "policy.error", "must be one of"),
    ],
)
def test_bad_policy_configuration_names_file_line_and_key(
    make_config: MakeConfig, text: str, line: int, key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        make_config(text)
    assert info.value.line == line
    assert info.value.key == key
    assert words in str(info.value)
    assert info.value.file is not None and info.value.file.endswith("mailwarden.toml")


def test_inline_override_tables_load_and_render(make_config: MakeConfig, tmp_path: Path) -> None:
    from mailwarden.config import load_config, render

    cfg = make_config(
        '[policy]\noverride = [{recipients = ["a@b.example"], infected = "accept"}]\n'
    )
    again = tmp_path / "again.toml"
    again.write_text(render(cfg), encoding="utf-8")
    assert load_config(again).values == cfg.values
