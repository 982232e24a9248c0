"""The text extractor: uuencoded blocks and ``data:`` URIs hidden in text and HTML.

The walker calls :func:`extract_text` for FileKind.TEXT and FileKind.HTML
objects (mail bodies, HTML parts, text attachments)::

    for child in extract_text(obj, ctx):   # labels: "payload.exe", "data-1"
        ...

It yields each ``begin 644 name`` ... ``end`` block (and the sharutils
``begin-base64`` variant) decoded, labelled by its name, and each ``data:``
URI payload (base64 or percent-encoded) labelled ``data-N``.  Text without
either marker costs two searches and yields nothing.

SECURITY: input is hostile; no privileges.  Decoded output is never larger than
its input and is charged to the budget; uuencoded output goes through
``ctx.spool()``; at most ``Limits.max_mime_parts`` children are produced, the
rest is reported unscanned.  Names are labels only.
"""

from __future__ import annotations

import binascii
import re
import urllib.parse
from collections.abc import Iterator

from mailwarden.engine.mime.codec import BASE64, b64decode_lenient, decode_body
from mailwarden.engine.mime.split import safe_label
from mailwarden.engine.objects import Buffer, Child, ScanObject, WalkContext

_BEGIN = re.compile(rb"^begin(-base64)?[ \t]+[0-7]{1,6}[ \t]+([^\r\n]*?)[ \t]*\r?$", re.MULTILINE)
_DATA_MARK = re.compile(rb"data:", re.IGNORECASE)
_DATA_URI = re.compile(
    rb"data:([a-z0-9.+-]+/[a-z0-9.+-]+)?((?:;[a-z0-9.+-]+(?:=[^;,\"'\s<>]*)?)*),",
    re.IGNORECASE,
)
#: characters that end an unquoted or quoted URI in HTML, CSS or text
_URI_END = re.compile(rb"[\"'\s<>()\[\]`]")
_TIME_CHECK_LINES = 4096


def extract_text(obj: ScanObject, ctx: WalkContext) -> Iterator[Child]:
    """Yield uuencoded files and ``data:`` URI payloads found in ``obj``."""
    data = obj.data
    count = 0
    limit = ctx.limits.max_mime_parts
    has_begin = data.find(b"begin") >= 0
    has_data = _DATA_MARK.search(data) is not None
    children: list[Iterator[Child]] = []
    if has_begin:
        children.append(_uuencoded(data, ctx))
    if has_data:
        children.append(_data_uris(data, ctx))
    for source in children:
        for child in source:
            count += 1
            if count > limit:
                ctx.unscanned(obj.part, f"more than {limit} encoded blocks")
                return
            yield child


def _uuencoded(data: Buffer, ctx: WalkContext) -> Iterator[Child]:
    pos = 0
    index = 0
    while True:
        m = _BEGIN.search(data, pos)
        if m is None:
            return
        ctx.budget.check_time()
        index += 1
        raw_name = m.group(2).decode("utf-8", "replace").strip()
        label = safe_label(raw_name) or f"uuencode-{index}"
        start = m.end() + 1
        if m.group(1):
            end = _find_line(data, b"====", start)
            payload = decode_body(data, start, end, BASE64, ctx)
        else:
            payload, end = _uudecode(data, start, ctx)
        pos = max(end, m.end())
        if len(payload):
            yield Child(label=label, data=payload, name=raw_name or None)


def _find_line(data: Buffer, marker: bytes, start: int) -> int:
    """Offset of the next line that starts with ``marker``, or the end of ``data``."""
    pos = data.find(b"\n" + marker, max(0, start - 1))
    return len(data) if pos < 0 else pos + 1


def _uudecode(data: Buffer, start: int, ctx: WalkContext) -> tuple[Buffer, int]:
    """Decode uuencoded lines from ``start`` up to ``end``; returns data and stop offset."""
    spool = ctx.spool()
    batch: list[bytes] = []
    pos = start
    size = len(data)
    lines = 0
    while pos < size:
        nl = data.find(b"\n", pos)
        line_end = size if nl < 0 else nl + 1
        line = data[pos:line_end].rstrip(b"\r\n")
        pos = line_end
        if line.rstrip() == b"end" or not line:
            break
        count = (line[0] - 32) & 63
        if count == 0:
            continue
        width = (count + 2) // 3 * 4
        # some encoders drop trailing blanks; a line much shorter than its
        # count is not uuencoded (and would be padded out of nothing)
        if len(line) - 1 < width - 2:
            break
        try:
            batch.append(binascii.a2b_uu(line[: 1 + width]))
        except binascii.Error:
            # not a uuencoded line: the block ended without its "end"
            break
        lines += 1
        if lines % _TIME_CHECK_LINES == 0:
            ctx.budget.check_time()
            spool.write(b"".join(batch))
            batch = []
    spool.write(b"".join(batch))
    return spool.getvalue(), pos


def _data_uris(data: Buffer, ctx: WalkContext) -> Iterator[Child]:
    index = 0
    for m in _DATA_URI.finditer(data):
        ctx.budget.check_time()
        start = m.end()
        stop = _URI_END.search(data, start)
        end = len(data) if stop is None else stop.start()
        if end <= start:
            continue
        params = m.group(2).lower()
        payload: Buffer
        if b";base64" in params:
            chunk = data[start:end]
            if b"%" in chunk:
                payload = b64decode_lenient(urllib.parse.unquote_to_bytes(chunk))
                ctx.budget.add_bytes(len(payload))
            else:
                payload = decode_body(data, start, end, BASE64, ctx)
        else:
            payload = urllib.parse.unquote_to_bytes(data[start:end])
            ctx.budget.add_bytes(len(payload))
        if not len(payload):
            continue
        index += 1
        mediatype = m.group(1)
        yield Child(
            label=f"data-{index}",
            data=payload,
            content_type=mediatype.decode("ascii").lower() if mediatype else None,
        )
