"""scrypt password hashes: round trip, salt, bounded parameters, malformed hashes."""

from __future__ import annotations

import pytest

from mailwarden.web.passwords import PasswordHashError, hash_password, parse_hash, verify_password


def test_a_hash_verifies_its_password_only() -> None:
    stored = hash_password("a long enough secret", n=2**4)
    assert verify_password("a long enough secret", stored)
    assert not verify_password("a long enough secreT", stored)
    assert not verify_password("", stored)


def test_each_hash_has_its_own_salt() -> None:
    assert hash_password("same password", n=2**4) != hash_password("same password", n=2**4)


def test_the_default_cost_is_stored_with_the_hash() -> None:
    n, r, p, salt, digest = parse_hash(hash_password("x" * 12))
    assert (n, r, p) == (2**15, 8, 1)
    assert len(salt) == 16 and len(digest) == 32


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain text",
        "scrypt$16$8$1$c2FsdHNhbHQ$",
        "scrypt$1048577$8$1$c2FsdHNhbHQ$" + "A" * 43,  # N not a power of two
        "scrypt$4194304$8$1$c2FsdHNhbHQ$" + "A" * 43,  # N too large: memory
        "scrypt$16$8$1$!!!$" + "A" * 43,
        "bcrypt$16$8$1$c2FsdHNhbHQ$" + "A" * 43,
    ],
)
def test_malformed_or_oversized_hashes_never_verify(stored: str) -> None:
    assert not verify_password("anything", stored)
    with pytest.raises(PasswordHashError):
        parse_hash(stored)


def test_a_huge_password_is_refused_without_hashing() -> None:
    stored = hash_password("p" * 2000, n=2**4)
    assert not verify_password("p" * 2000, stored)
