"""Password hashes for the web login: scrypt from the standard library.

Usage::

    text = hash_password("correct horse")     # "scrypt$32768$8$1$<salt>$<hash>"
    verify_password("correct horse", text)    # True, in constant time

``mailwarden web passwd`` prints a hash for ``[web] password_hash``.
hashlib.scrypt is a memory-hard key derivation function (RFC 7914) built
into Python's OpenSSL binding, so no extra dependency (argon2-cffi, bcrypt)
is needed for one administrator password; docs/web.md says more.

SECURITY: a random 16-byte salt per hash; the parameters are stored with
the hash and bounded when read back, so a hand-edited configuration cannot
make a login allocate gigabytes.  The comparison is ``hmac.compare_digest``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

#: cost: 2**15 rounds of 8-block mixing takes ~32 MiB and tens of milliseconds
N, R, P = 2**15, 8, 1
_MAX_N = 2**20
_DKLEN = 32


class PasswordHashError(ValueError):
    """The text is not a hash made by :func:`hash_password`."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _derive(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=256 * n * r + 2**20
    )


def hash_password(password: str, *, n: int = N, r: int = R, p: int = P) -> str:
    salt = secrets.token_bytes(16)
    digest = _derive(password, salt, n, r, p, _DKLEN)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def parse_hash(text: str) -> tuple[int, int, int, bytes, bytes]:
    """(n, r, p, salt, digest) of a stored hash; :class:`PasswordHashError` if it is not one."""
    parts = text.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise PasswordHashError("not an scrypt hash from `mailwarden web passwd`")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, digest = _unb64(parts[4]), _unb64(parts[5])
    except ValueError as exc:
        raise PasswordHashError(f"malformed scrypt hash: {exc}") from None
    if not (2 <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
        raise PasswordHashError("scrypt parameters out of range (N a power of 2 up to 2**20)")
    if len(salt) < 8 or not 16 <= len(digest) <= 64:
        raise PasswordHashError("scrypt salt or digest has the wrong length")
    return n, r, p, salt, digest


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``; False for an empty or malformed hash."""
    try:
        n, r, p, salt, digest = parse_hash(stored)
    except PasswordHashError:
        return False
    if len(password) > 1024:
        return False
    return hmac.compare_digest(_derive(password, salt, n, r, p, len(digest)), digest)
