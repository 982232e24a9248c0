"""The login name from a client's SASL answers, for per-user policy.

::

    sasl_user(b"PLAIN", [b"AGFsaWNlAHNlY3JldA=="])    # "alice"

SECURITY: the answers are untrusted base64; anything malformed gives None
(the policy then has no user, the defaults apply).  Passwords are decoded
in memory only to find the name, and never logged or kept.
"""

from __future__ import annotations

import base64
import binascii


def sasl_user(mechanism: bytes, answers: list[bytes]) -> str | None:
    """PLAIN: the authorization identity, else the authentication identity;
    LOGIN: the first answer."""
    try:
        if mechanism.upper() == b"PLAIN" and answers:
            parts = base64.b64decode(answers[0], validate=True).split(b"\0")
            if len(parts) == 3:
                return (parts[0] or parts[1]).decode("utf-8", "replace") or None
        if mechanism.upper() == b"LOGIN" and answers:
            return base64.b64decode(answers[0], validate=True).decode("utf-8", "replace") or None
    except (binascii.Error, ValueError):
        return None
    return None
