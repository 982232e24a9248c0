"""classify(): inbound vs outbound from local domains, trusted networks and AUTH."""

from __future__ import annotations

import pytest

from mailwarden.message import Direction, Envelope, Point
from mailwarden.policy import Network, classify
from mailwarden.policy.direction import parse_client_address

NET = Network.from_values(
    {
        "local_domains": ["local.example", ".corp.example"],
        "trusted_networks": ["192.0.2.0/24", "2001:db8::/32"],
    }
)


@pytest.mark.parametrize(
    ("envelope", "expected"),
    [
        (
            Envelope("a@corp.example", ("b@remote.example",), client_address="192.0.2.7"),
            Direction.OUTBOUND,
        ),
        (
            Envelope("a@corp.example", ("b@remote.example",), client_address="[IPv6:2001:db8::5]"),
            Direction.OUTBOUND,
        ),
        (
            Envelope("a@corp.example", ("b@remote.example",), client_address="::ffff:192.0.2.9"),
            Direction.OUTBOUND,
        ),
        (
            Envelope(
                "x@any.example",
                ("b@remote.example",),
                client_address="203.0.113.1",
                auth_user="alice",
            ),
            Direction.OUTBOUND,
        ),
        # trusted source to local mailboxes only: delivered here, so inbound
        (
            Envelope(
                "a@local.example",
                ("b@local.example", "c@mx.corp.example"),
                client_address="192.0.2.7",
            ),
            Direction.INBOUND,
        ),
        # a local sender address alone proves nothing
        (
            Envelope("ceo@local.example", ("b@remote.example",), client_address="203.0.113.1"),
            Direction.INBOUND,
        ),
        (
            Envelope("a@b.example", ("c@remote.example",), client_address="not-an-ip"),
            Direction.INBOUND,
        ),
        (Envelope("a@b.example", ("c@local.example",)), Direction.INBOUND),
        (Envelope("a@b.example", ("c@remote.example",)), Direction.UNKNOWN),
        (
            Envelope(
                "a@b.example", ("c@remote.example",), client_address="192.0.2.7", point=Point.MDA
            ),
            Direction.INBOUND,
        ),
        (Envelope("a@b.example", ("c@local.example",), point=Point.OUTBOUND), Direction.OUTBOUND),
        (
            Envelope(
                "a@b.example", ("c@remote.example",), direction=Direction.INBOUND, auth_user="x"
            ),
            Direction.INBOUND,
        ),
    ],
)
def test_classify(envelope: Envelope, expected: Direction) -> None:
    assert classify(envelope, NET) is expected


def test_local_domain_matching() -> None:
    assert NET.is_local("<B@LOCAL.EXAMPLE>")
    assert NET.is_local("x@corp.example") and NET.is_local("x@a.b.corp.example")
    assert not NET.is_local("x@sub.local.example")
    assert not NET.is_local("x@evilcorp.example")
    assert not NET.is_local("postmaster")


@pytest.mark.parametrize("value", [None, "", "unknown", "[1.2.3]", "IPv6:zz::1"])
def test_unparsable_client_addresses_are_not_trusted(value: str | None) -> None:
    assert parse_client_address(value) is None
    assert not NET.is_trusted(value)
