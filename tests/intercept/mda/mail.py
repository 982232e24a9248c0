"""Messages as an MTA hands them to a local delivery agent: LF line ends, maybe a From_ line.

SECURITY: test-only; EICAR is the harmless antivirus test string.
"""

from __future__ import annotations

import uuid

from intercept.harness import EICAR

FROM_LINE = b"From sender@remote.example  Fri Nov 27 12:00:00 2026\n"


def message(
    *,
    subject: str = "hello",
    body: bytes = b"Just a test message.\n",
    infected: bool = False,
    from_line: bool = False,
    to: str = "user@mda.example",
) -> tuple[bytes, str]:
    """A message and its unique Message-ID; ``infected`` puts EICAR in the body."""
    mid = f"<{uuid.uuid4().hex}@client.example>"
    head = (
        f"From: Sender <sender@remote.example>\nTo: {to}\nSubject: {subject}\nMessage-ID: {mid}\n\n"
    ).encode()
    text = head + body + (EICAR + b"\n" if infected else b"")
    return (FROM_LINE + text if from_line else text), mid


def header_block(data: bytes) -> bytes:
    return data.split(b"\n\n", 1)[0]
