"""Signed session cookies and CSRF tokens for the web interface.

Usage::

    signer = SessionSigner(key, lifetime=28800, password_hash=settings.password_hash)
    cookie = signer.issue("admin")              # value of the session cookie
    session = signer.check(cookie)              # Session or None
    session.csrf                                # token every POST form carries
    signer.revoke(session)                      # logout

A cookie is ``<payload>.<mac>``: the payload (base64url JSON: session id,
user, CSRF token, expiry) and an HMAC-SHA256 over it under the key in
``[web] secret_file``.  Nothing is kept on the server but the ids of
sessions logged out before they expired, so a restart keeps everybody
logged in.  The MAC also covers a fingerprint of the configured password
hash: setting a new password ends every session.

SECURITY: the key file must be 0600 and is created that way (32 random
bytes, hex); one readable by others is refused.  Cookies are compared with
``hmac.compare_digest``; an expired, altered or revoked cookie is simply
not a session.  The CSRF token is per session, random, and sent only in
pages; a form without it is refused by the application.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mailwarden.actions.release import ReleaseError, load_secret
from mailwarden.errors import MailwardenError

#: a cookie longer than this is not looked at
_MAX_COOKIE = 1024


class SessionKeyError(MailwardenError):
    """The session key file cannot be read, created, or is readable by others."""


@dataclass(frozen=True, slots=True)
class Session:
    sid: str
    user: str
    csrf: str
    expires: int


def load_key(path: Path) -> bytes:
    """Read the signing key, creating a 0600 one on first use.

    The same rules as the release secret (``actions.release``): 0600, no
    symlink, at least 32 characters; only the name in the errors differs.
    """
    try:
        return load_secret(path, create=True)
    except ReleaseError as exc:
        raise SessionKeyError(str(exc).replace("release secret", "session key")) from None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    def __init__(
        self,
        key: bytes,
        *,
        lifetime: int,
        password_hash: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # the password's fingerprint is part of the key: a new password, new sessions
        fingerprint = hashlib.sha256(password_hash.encode("utf-8")).digest()
        self._key = hmac.new(key, b"mailwarden-web-session\0" + fingerprint, "sha256").digest()
        self.lifetime = lifetime
        self.clock = clock
        self._revoked: dict[str, int] = {}

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), "sha256").digest())

    def issue(self, user: str) -> tuple[str, Session]:
        session = Session(
            sid=secrets.token_urlsafe(16),
            user=user,
            csrf=secrets.token_urlsafe(24),
            expires=int(self.clock()) + self.lifetime,
        )
        body = {"sid": session.sid, "u": session.user, "c": session.csrf, "e": session.expires}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode("utf-8"))
        return f"{payload}.{self._mac(payload)}", session

    def check(self, cookie: str | None) -> Session | None:
        if not cookie or len(cookie) > _MAX_COOKIE or cookie.count(".") != 1:
            return None
        payload, mac = cookie.split(".")
        if not hmac.compare_digest(self._mac(payload), mac):
            return None
        try:
            body = json.loads(_unb64(payload))
            session = Session(str(body["sid"]), str(body["u"]), str(body["c"]), int(body["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires <= self.clock() or session.sid in self._revoked:
            return None
        return session

    def revoke(self, session: Session) -> None:
        now = self.clock()
        # forget revocations whose cookies have expired anyway: bounded memory
        self._revoked = {s: e for s, e in self._revoked.items() if e > now}
        self._revoked[session.sid] = session.expires


def same_token(expected: str, given: object) -> bool:
    """Constant-time check of a CSRF token from a form."""
    return isinstance(given, str) and bool(expected) and hmac.compare_digest(expected, given)
