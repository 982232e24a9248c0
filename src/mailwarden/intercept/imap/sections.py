"""Answer a FETCH item from a message the proxy serves instead of the original.

::

    value = item_value(b"BODY[HEADER.FIELDS (SUBJECT)]<0>", data, count=None)
    value = item_value(b"RFC822.SIZE", data)          # b"1234"
    value = item_value(b"BODYSTRUCTURE", data)        # a text/plain structure

The replacement is a single-part message (the warning), or the original
with headers added (the ``tag`` outcome): sections are taken from its bytes
as RFC 3501 section 6.4.5 defines them for a non-multipart message (part 1
is the body; other parts do not exist and are NIL).  Structures describe a
single text part, which the warning is; a tagged copy keeps the server's.

SECURITY: works on bytes the proxy built or already scanned; header field
names from the client's request are matched case-insensitively and never
echoed into anything but the label they came with.
"""

from __future__ import annotations

import re

from mailwarden.intercept.download import header_fields
from mailwarden.intercept.imap.fetch import key_of
from mailwarden.intercept.imap.wire import nstring

_SECTION = re.compile(rb"^(BODY|BINARY|BINARY\.SIZE)\[([^\]]*)\](?:<(\d+)>)?$")


def split(data: bytes) -> tuple[bytes, bytes]:
    """(header with its blank line, body)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return data, b""
    return data[: end + 4], data[end + 4 :]


def section(data: bytes, spec: bytes) -> bytes | None:
    """The bytes of section ``spec`` (upper case) of ``data``; None when it does not exist."""
    head, body = split(data)
    if spec == b"":
        return data
    if spec == b"HEADER":
        return head
    if spec in (b"TEXT", b"1"):
        return body
    if spec.startswith((b"HEADER.FIELDS.NOT ", b"HEADER.FIELDS ")):
        negate = spec.startswith(b"HEADER.FIELDS.NOT ")
        names = {n.strip(b'"').lower() for n in spec.partition(b"(")[2].rstrip(b")").split()}
        picked = [text + b"\r\n" for name, text in header_fields(data) if (name in names) != negate]
        return b"".join(picked) + b"\r\n"
    if spec == b"1.MIME":
        picked = [
            text + b"\r\n" for name, text in header_fields(data) if name.startswith(b"content-")
        ]
        return b"".join(picked) + b"\r\n"
    return None


def _lines(data: bytes) -> int:
    return data.count(b"\n")


def structure(data: bytes) -> bytes:
    body = split(data)[1]
    return b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" %d %d)' % (
        len(body),
        _lines(body),
    )


def item_value(
    label: bytes, data: bytes, *, count: int | None = None, single: bool = True
) -> bytes | None:
    """The value of response item ``label`` for ``data``; None: keep the server's.
    ``single``: ``data`` is the warning (a single text part), not a tagged copy."""
    key = key_of(label)
    if key == b"RFC822.SIZE":
        return b"%d" % len(data)
    if key == b"RFC822":
        return nstring(data)
    if key == b"RFC822.HEADER":
        return nstring(split(data)[0])
    if key == b"RFC822.TEXT":
        return nstring(split(data)[1])
    if key in (b"BODYSTRUCTURE", b"BODY"):
        return structure(data) if single else None
    if key.startswith(b"PREVIEW"):
        return b"NIL"
    match = _SECTION.match(key)
    if match is None:
        return None
    part = section(data, match.group(2))
    if match.group(1) == b"BINARY.SIZE":
        return b"%d" % len(part or b"")
    if part is not None and match.group(3) is not None:
        origin = int(match.group(3))
        part = part[origin : origin + count if count is not None else None]
    if match.group(1) == b"BINARY" and part is not None:
        return b"~{%d}\r\n" % len(part) + part
    return nstring(part)
