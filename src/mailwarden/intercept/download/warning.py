"""The warning message a download proxy serves in place of a message it must not pass.

::

    text = warning_message(raw, found="Infected: Eicar-Test-Signature",
                           note="The original is held in quarantine as 3f2a...",
                           host="mx1.example.org", size=len(raw))

The warning is a valid RFC 5322 message: the original's From, Date,
Subject and Message-ID fields (so the client files and threads it where the
original would have gone), a single text/plain part saying what was found,
and CRLF line ends as POP3 and IMAP carry them.  With ``size`` it is padded
with blank-space lines to exactly that many octets when it fits, so the
sizes the server already announced (POP3 LIST, IMAP RFC822.SIZE) stay
true; a warning that cannot fit keeps its own size and the proxies report
that instead.

SECURITY: the input is hostile.  Only whole header fields are copied, and
only those four, each bounded in length; a field that is not plain
printable text (bare CR, NUL, over-long) is replaced by a neutral one.  The
text we add comes from verdict names cleaned by ``safe_text``.
"""

from __future__ import annotations

import re
from email.utils import formatdate

from mailwarden.policy import safe_text

#: fields copied from the original, in this order
KEPT = (b"from", b"date", b"subject", b"message-id")
_MAX_FIELD = 4000
_FIELD = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]*:")
_BAD = re.compile(rb"[\x00\r]")
_PAD_LINE = 76


def header_fields(raw: bytes) -> list[tuple[bytes, bytes]]:
    """(lower-case name, whole field with its folded lines, no final line end) of the
    top-level header, in order; lenient, linear, never raises."""
    end = _header_end(raw)
    fields: list[tuple[bytes, bytes]] = []
    for line in raw[:end].replace(b"\r\n", b"\n").split(b"\n"):
        if line[:1] in (b" ", b"\t") and fields:
            name, text = fields[-1]
            fields[-1] = (name, text + b"\r\n" + line)
            continue
        match = _FIELD.match(line)
        if match:
            fields.append((match.group(1).lower(), line))
    return fields


def _header_end(raw: bytes) -> int:
    positions = [p for p in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if p >= 0]
    return min(positions) if positions else len(raw)


def _kept(raw: bytes) -> dict[bytes, bytes]:
    kept: dict[bytes, bytes] = {}
    for name, text in header_fields(raw):
        plain = len(text) <= _MAX_FIELD and not _BAD.search(text.replace(b"\r\n", b""))
        if name in KEPT and name not in kept and plain:
            kept[name] = text
    return kept


def warning_message(
    raw: bytes,
    *,
    found: str,
    status: str,
    note: str,
    host: str,
    size: int | None = None,
    date: str = "",
) -> bytes:
    """The replacement for ``raw``; see the module documentation.  ``found`` is the
    sentence for the reader, ``status`` the ``X-Virus-Status`` value."""
    kept = _kept(raw)
    host_text = safe_text(host, 100) or "localhost"
    lines = [
        kept.get(b"from", f"From: Mail scanner <postmaster@{host_text}>".encode()),
        kept.get(b"date", f"Date: {date or formatdate(localtime=False)}".encode()),
        kept.get(b"subject", b"Subject: (message removed by the virus scanner)"),
    ]
    if b"message-id" in kept:
        lines.append(kept[b"message-id"])
    lines += [
        b"MIME-Version: 1.0",
        b"Content-Type: text/plain; charset=us-ascii",
        b"Content-Transfer-Encoding: 7bit",
        f"X-Virus-Status: {safe_text(status, 200)}".encode(),
        f"X-Mailwarden-Replaced: by mailwarden on {host_text}".encode(),
    ]
    body = [
        b"",
        b"This message was removed by the virus scanner of your mail server",
        f"({host_text}) before it reached you.".encode(),
        b"",
        f"  {safe_text(found, 200)}".encode(),
        b"",
    ]
    body += [safe_text(part, 200).encode() for part in note.split("\n") if part]
    body += [
        b"",
        b"The sender, date, subject and message id above are the original's.",
        b"Ask your mail administrator if you need the original message.",
    ]
    text = b"\r\n".join(lines + body) + b"\r\n"
    if size is not None and len(text) > size:
        # a small original: the short form may still fit its size
        short = [b"", f"Removed by the virus scanner: {safe_text(found, 200)}".encode()]
        text = min(text, b"\r\n".join(lines + short) + b"\r\n", key=len)
    return pad(text, size) if size is not None else text


def pad(text: bytes, size: int) -> bytes:
    """``text`` grown to ``size`` octets with blank-space lines (unchanged when it is
    not shorter); ``text`` ends with CRLF."""
    missing = size - len(text)
    if missing <= 0:
        return text
    if missing == 1:
        # one octet: a space at the end of the last line (a line of its own needs two)
        return text[:-2] + b" \r\n"
    out = bytearray(text)
    while missing > 0:
        if missing <= _PAD_LINE + 2:
            out += b" " * (missing - 2) + b"\r\n"
            break
        take = _PAD_LINE if missing - (_PAD_LINE + 2) >= 2 else _PAD_LINE - 1
        out += b" " * take + b"\r\n"
        missing -= take + 2
    return bytes(out)
