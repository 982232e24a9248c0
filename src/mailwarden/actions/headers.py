"""Header rewriting: add the X-Virus-* headers, strip forged ones, tag the Subject.

The one place that changes a message's bytes.  It edits the top-level header
block as bytes and copies everything else unchanged, so signatures over the
body (DKIM) and unusual encodings survive::

    new = rewrite(raw, add=[("X-Virus-Status", "Clean")],
                  strip=("X-Virus-Status",), subject_tag="***VIRUS***")
    new = apply_action(raw, action, outcome, host="mx1.example.org")

Rules: new fields go first (after an mbox ``From `` line if there is one),
with the message's own line ending; stripped fields go with their folded
continuation lines; the tag goes in front of every Subject field (an encoded
word stays intact, separated by a space); a message without a Subject gets
one; a Subject that already starts with the tag is left alone, so a message
scanned twice is tagged once.

SECURITY: the input is hostile and may be malformed; parsing is linear and
lenient, and never raises.  Values we add come from configuration and
verdicts and are forced to printable ASCII (a non-ASCII tag becomes an
RFC 2047 encoded word), so nothing can inject a header line.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Collection, Sequence

from mailwarden import __version__
from mailwarden.engine.mime.headers import decode_rfc2047
from mailwarden.policy import Action, Outcome, safe_text

#: The release mark (``actions.release``); removed from every delivered copy,
#: valid or not, so it never reaches a reader.
RELEASE_HEADER = "X-Mailwarden-Release"

_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")
#: RFC 5322's limit on a line, CRLF excluded
_MAX_LINE = 998


def scanned_value(host: str) -> str:
    """The ``X-Virus-Scanned`` value: ``mailwarden 0.1.0 on mx1.example.org``."""
    return f"mailwarden {__version__} on {safe_text(host, 100) or 'localhost'}"


def apply_action(raw: bytes, action: Action, outcome: Outcome, *, host: str) -> bytes:
    """The bytes to deliver for one outcome of ``action`` (headers, subject tag)."""
    add: list[tuple[str, str]] = []
    if action.add_headers:
        add = [("X-Virus-Scanned", scanned_value(host)), ("X-Virus-Status", action.status)]
    strip = (*action.strip, RELEASE_HEADER)
    return rewrite(raw, add=add, strip=strip, subject_tag=outcome.subject_tag)


def rewrite(
    raw: bytes,
    *,
    add: Sequence[tuple[str, str]] = (),
    strip: Collection[str] = (),
    subject_tag: str = "",
) -> bytes:
    """``raw`` with fields added, fields removed and the Subject tagged; see module docs."""
    start = _prefix_end(raw)
    eol = _line_ending(raw, start)
    fields, end = _fields(raw, start)
    drop = {name.lower().encode("ascii") for name in strip}
    out = bytearray(raw[:start])
    if add and out and not out.endswith(b"\n"):
        out += eol
    for name, value in add:
        out += safe_text(name, 76).replace(" ", "-").encode("ascii") + b": "
        out += safe_text(value, 900).encode("ascii") + eol
    tagged = False
    for key, first, last in fields:
        field = raw[first:last]
        if key in drop:
            continue
        if key == b"subject" and subject_tag:
            field = _tag_subject(field, subject_tag, eol)
            tagged = True
        out += field
    if subject_tag and not tagged:
        if out and not out.endswith(b"\n"):
            out += eol
        out += b"Subject: " + _encode_tag(subject_tag) + eol
    out += raw[end:]
    return bytes(out)


def _prefix_end(raw: bytes) -> int:
    """Where fields may be inserted: after an mbox ``From `` line and after lines
    that look like continuations of no field (new fields put before them would
    swallow them)."""
    pos = 0
    while pos < len(raw) and (
        (pos == 0 and raw.startswith(b"From ")) or raw[pos : pos + 1] in (b" ", b"\t")
    ):
        newline = raw.find(b"\n", pos)
        pos = len(raw) if newline < 0 else newline + 1
    return pos


def _line_ending(raw: bytes, start: int) -> bytes:
    newline = raw.find(b"\n", start)
    return b"\r\n" if newline > 0 and raw[newline - 1 : newline] == b"\r" else b"\n"


def _fields(raw: bytes, start: int) -> tuple[list[tuple[bytes, int, int]], int]:
    """Header fields as (lower-case name, start, end incl. continuations), and the block end.

    The block ends at the first empty line or the first line that is neither a
    field nor a continuation; that line and the rest are the body.
    """
    fields: list[tuple[bytes, int, int]] = []
    pos = start
    size = len(raw)
    while pos < size:
        newline = raw.find(b"\n", pos)
        line_end = size if newline < 0 else newline + 1
        line = raw[pos:line_end]
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t") and fields:
            name, first, _ = fields[-1]
            fields[-1] = (name, first, line_end)
        else:
            m = _FIELD.match(line)
            if not m:
                break
            fields.append((m.group(1).lower(), pos, line_end))
        pos = line_end
    return fields, pos


def _tag_subject(field: bytes, tag: str, eol: bytes) -> bytes:
    colon = field.index(b":")
    value = field[colon + 1 :]
    unfolded = re.sub(rb"\r?\n[ \t]", b" ", value).strip()
    text = decode_rfc2047(unfolded.decode("latin-1"))
    if text.startswith(tag):
        return field
    ending = b""
    body = value
    if body.endswith(b"\n"):
        ending = b"\r\n" if body.endswith(b"\r\n") else b"\n"
        body = body[: -len(ending)]
    body = body.lstrip(b" \t")
    encoded = _encode_tag(tag)
    if not body:
        return b"Subject: " + encoded + (ending or eol)
    first_line = body.split(b"\n", 1)[0]
    if len(b"Subject: ") + len(encoded) + 1 + len(first_line) > _MAX_LINE:
        # fold before the old value rather than make an over-long line
        return b"Subject: " + encoded + eol + b" " + body + ending
    return b"Subject: " + encoded + b" " + body + ending


def _encode_tag(tag: str) -> bytes:
    clean = "".join(ch for ch in tag if ch >= " " and ch != "\x7f").strip()
    if clean.isascii():
        return clean.encode("ascii")
    return b"=?utf-8?b?" + base64.b64encode(clean.encode("utf-8")) + b"?="
