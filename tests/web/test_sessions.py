"""Signed session cookies: issue, check, expiry, tampering, revocation, key file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailwarden.web.sessions import SessionKeyError, SessionSigner, load_key, same_token

KEY = b"k" * 64
HASH = "scrypt$a"  # any text: only its fingerprint matters


def _signer(clock: list[float], password_hash: str = HASH) -> SessionSigner:
    return SessionSigner(KEY, lifetime=100, password_hash=password_hash, clock=lambda: clock[0])


def test_issued_cookie_is_a_session_until_it_expires() -> None:
    now = [1000.0]
    signer = _signer(now)
    cookie, session = signer.issue("admin")
    assert signer.check(cookie) == session
    assert session.user == "admin" and len(session.csrf) >= 32
    now[0] = 1099
    assert signer.check(cookie) == session
    now[0] = 1100
    assert signer.check(cookie) is None


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c[:-2] + ("AA" if not c.endswith("AA") else "BB"),
        lambda c: "x" + c,
        lambda c: c.replace(".", ""),
        lambda c: c + "." + c,
        lambda c: "",
        lambda c: "a" * 5000,
    ],
)
def test_an_altered_cookie_is_no_session(change: object) -> None:
    signer = _signer([0.0])
    cookie, _ = signer.issue("admin")
    assert signer.check(change(cookie)) is None  # type: ignore[operator]


def test_another_key_or_a_new_password_ends_every_session() -> None:
    now = [0.0]
    cookie, _ = _signer(now).issue("admin")
    assert _signer(now, "scrypt$other").check(cookie) is None
    assert SessionSigner(b"j" * 64, lifetime=100, password_hash=HASH).check(cookie) is None


def test_revoked_sessions_stay_revoked_and_memory_is_bounded() -> None:
    now = [0.0]
    signer = _signer(now)
    cookie, session = signer.issue("admin")
    signer.revoke(session)
    assert signer.check(cookie) is None
    now[0] = 500  # long expired: forgotten at the next revocation
    _, other = signer.issue("admin")
    signer.revoke(other)
    assert session.sid not in signer._revoked


def test_csrf_tokens_compare_exactly() -> None:
    assert same_token("abc", "abc")
    assert not same_token("abc", "abd")
    assert not same_token("abc", None)
    assert not same_token("", "")


def test_the_key_file_is_created_0600_and_refused_when_readable(tmp_path: Path) -> None:
    path = tmp_path / "web.key"
    key = load_key(path)
    assert len(key) == 64 and os.stat(path).st_mode & 0o777 == 0o600
    assert load_key(path) == key
    path.chmod(0o644)
    with pytest.raises(SessionKeyError, match="readable by others"):
        load_key(path)
    path.chmod(0o600)
    path.write_bytes(b"short\n")
    with pytest.raises(SessionKeyError, match="too short"):
        load_key(path)
    with pytest.raises(SessionKeyError, match="cannot create"):
        load_key(tmp_path / "missing" / "web.key")
