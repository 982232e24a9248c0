"""The PDF extractor: every ``stream ... endstream`` object, decoded.

The walker calls :func:`extract_pdf` for FileKind.PDF::

    for child in extract_pdf(obj, ctx):   # "stream-12", or "stream-7" named "a.exe"
        ...

Each stream is decoded through its /Filter chain (FlateDecode with PNG/TIFF
predictors for small streams, ASCIIHexDecode, ASCII85Decode, LZWDecode,
RunLengthDecode; image codecs such as DCTDecode end the chain and the data is
yielded as it is then) and labelled ``stream-<object number>``.  An
/EmbeddedFile stream is named after the /UF or /F entry of the file
specification that points at it.

The file is read leniently, as viewers do: objects are found by searching for
``N G obj`` and ``stream``, not through the cross-reference table; a wrong or
indirect /Length falls back to searching ``endstream``; a missing
``endstream`` ends the stream at ``endobj`` or at the end of the file; a
corrupt compressed stream yields what decoded before the damage.

Approximations: file specifications inside compressed object streams are not
resolved (the embedded file is still yielded, without its name); encrypted
documents are reported unscanned (their streams are tried anyway, which only
works for the unencrypted ones such as cross-reference streams).

SECURITY: input is hostile; no privileges.  Every decoding stage is pulled
chunk by chunk; each stage's output is charged against the expansion-ratio
and time limits, and the final output goes through ``ctx.spool()``, so a
Flate bomb, or a chain of them, stops while it expands.  File names are labels.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import re
import zlib
from collections.abc import Callable, Iterator

from mailwarden.engine.limits import LimitExceeded
from mailwarden.engine.objects import Buffer, Child, ScanObject, WalkContext

# Objects are found from the literal keyword backwards: a pattern that starts
# with a digit class would be tried at every digit of megabytes of image data.
_OBJ_KEYWORD = re.compile(rb"obj\b")
_OBJ_HEAD = re.compile(rb"(\d{1,10})[ \t\r\n\f\x00]+\d{1,5}[ \t\r\n\f\x00]+$")
_STREAM = re.compile(rb"(?<![A-Za-z])stream[ \t]*(?:\r\n|\r|\n)")
_LENGTH = re.compile(rb"/Length\s*(\d{1,12})(?:\s+(\d{1,5})\s+R)?")
_FILTER = re.compile(rb"/Filter\s*(\[[^\]]*\]|/[^\s/\[\]<>()]+)")
_NAME = re.compile(rb"/([^\s/\[\]<>()]+)")
_PARMS = re.compile(rb"/DecodeParms\s*(\[.*?\]|<<.*?>>)", re.DOTALL)
_PARM_ITEM = re.compile(rb"<<(.*?)>>|null", re.DOTALL)
_INT_KEY = re.compile(rb"/(Predictor|Columns|Colors|BitsPerComponent|EarlyChange)\s+(\d{1,6})")
_EMBEDDED = re.compile(rb"/Type\s*/EmbeddedFile\b")
_EF = re.compile(rb"/EF\s*<<(.*?)>>", re.DOTALL)
_EF_REF = re.compile(rb"/U?F\s+(\d{1,10})\s+\d{1,5}\s+R")
_FILESPEC_NAME = re.compile(rb"/(UF|F)\s*([(<])")
_INT = re.compile(rb"\s*(\d{1,12})")
_ENDOBJ = b"endobj"
_ENDSTREAM = b"endstream"

_IN_CHUNK = 64 * 1024
_OUT_CHUNK = 256 * 1024
#: how far back from ``stream`` the object's dictionary is looked for
_DICT_WINDOW = 64 * 1024
#: predictors are undone in pure Python, so only for streams this small
_PREDICTOR_MAX = 256 * 1024

Chunks = Iterator[bytes]
Params = dict[bytes, int]


def _find_objects(data: Buffer) -> list[tuple[int, int, int]]:
    """``(start, end, number)`` of every ``N G obj`` header, in file order."""
    found = []
    for m in _OBJ_KEYWORD.finditer(data):
        at = m.start()
        window = bytes(data[max(0, at - 40) : at])
        head = _OBJ_HEAD.search(window)
        if head is not None:
            found.append((at - len(window) + head.start(), m.end(), int(head.group(1))))
    return found


def extract_pdf(obj: ScanObject, ctx: WalkContext) -> Iterator[Child]:
    """Yield each stream of the PDF in ``obj``, decoded, in file order."""
    data = obj.data
    if re.search(rb"/Encrypt\s*(?:\d|<<)", data):
        ctx.unscanned(obj.part, "encrypted document")
    objects = _find_objects(data)
    starts = [o[0] for o in objects]
    # the last definition of a number wins, as with incremental updates
    body_at = {num: end for _, end, num in objects}
    names = _embedded_names(data, objects, starts)
    pos = 0
    while True:
        m = _STREAM.search(data, pos)
        if m is None:
            return
        ctx.budget.check_time()
        i = bisect.bisect_right(starts, m.start()) - 1
        if i >= 0 and m.start() - objects[i][1] <= _DICT_WINDOW:
            objnum: int | None = objects[i][2]
            head = data[objects[i][1] : m.start()]
        else:
            objnum = None
            head = data[max(pos, m.start() - 4096) : m.start()]
        start = m.end()
        end, resume = _stream_end(data, start, head, body_at)
        pos = max(resume, m.end())
        label = f"stream-{objnum}" if objnum is not None else f"stream-at-{m.start()}"
        child = _decode_stream(data, start, end, head, label, ctx, obj.part)
        if child is None:
            continue
        if objnum is not None and _EMBEDDED.search(head):
            child.name = names.get(objnum)
            child.meta["embedded_file"] = True
        yield child


def _stream_end(data: Buffer, start: int, head: bytes, body_at: dict[int, int]) -> tuple[int, int]:
    """Return (end of the stream data, where to resume searching)."""
    length = _declared_length(data, head, body_at)
    if length is not None and start + length <= len(data):
        after = bytes(data[start + length : start + length + 32]).lstrip(b"\r\n \t")
        if after.startswith(_ENDSTREAM):
            return start + length, start + length
    found = data.find(_ENDSTREAM, start)
    if found < 0:
        found = data.find(_ENDOBJ, start)
        end = len(data) if found < 0 else found
        return end, end
    end = found
    if data[end - 1 : end] == b"\n":
        end -= 1
    if end > start and data[end - 1 : end] == b"\r":
        end -= 1
    return max(start, end), found + len(_ENDSTREAM)


def _declared_length(data: Buffer, head: bytes, body_at: dict[int, int]) -> int | None:
    m = _LENGTH.search(head)
    if m is None:
        return None
    if m.group(2) is None:
        return int(m.group(1))
    # an indirect length: "/Length 12 0 R" points at "12 0 obj 3456 endobj"
    end = body_at.get(int(m.group(1)))
    if end is None:
        return None
    value = _INT.match(bytes(data[end : end + 32]))
    return int(value.group(1)) if value else None


def _embedded_names(
    data: Buffer, objects: list[tuple[int, int, int]], starts: list[int]
) -> dict[int, str]:
    """Map embedded-file stream object numbers to the names their file specs give."""
    names: dict[int, str] = {}
    for m in _EF.finditer(data):
        ref = _EF_REF.search(m.group(1))
        if ref is None:
            continue
        i = bisect.bisect_right(starts, m.start()) - 1
        begin = objects[i][1] if i >= 0 else max(0, m.start() - 4096)
        stop = data.find(_ENDOBJ, m.end(), m.end() + _DICT_WINDOW)
        body = bytes(data[begin : stop if stop >= 0 else m.end() + 4096])
        found: dict[bytes, str] = {}
        for key in _FILESPEC_NAME.finditer(body):
            # the /F inside the /EF dictionary is a reference, not a name
            if m.start() - begin <= key.start() < m.end() - begin:
                continue
            found.setdefault(key.group(1), pdf_string(body, key.start(2)))
        name = found.get(b"UF") or found.get(b"F")
        if name:
            names.setdefault(int(ref.group(1)), name)
    return names


def pdf_string(buf: bytes, pos: int) -> str:
    """Decode the literal ``(...)`` or hex ``<...>`` string starting at ``buf[pos]``."""
    if buf[pos : pos + 1] == b"<":
        end = buf.find(b">", pos)
        hexd = re.sub(rb"[^0-9A-Fa-f]", b"", buf[pos + 1 : end if end >= 0 else len(buf)])
        raw = binascii.unhexlify(hexd + b"0" * (len(hexd) % 2))
    else:
        raw = _literal(buf, pos + 1)
    if raw.startswith(b"\xfe\xff"):
        return raw[2:].decode("utf-16-be", "replace")
    if raw.startswith(b"\xff\xfe"):
        return raw[2:].decode("utf-16-le", "replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


_ESCAPES = {
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
    ord("b"): b"\b",
    ord("f"): b"\f",
    ord("\n"): b"",
    ord("\r"): b"",
}


def _literal(buf: bytes, pos: int) -> bytes:
    out = bytearray()
    depth = 1
    n = min(len(buf), pos + 4096)
    while pos < n:
        c = buf[pos]
        pos += 1
        if c == 0x5C and pos < n:  # backslash
            e = buf[pos]
            pos += 1
            if 0x30 <= e <= 0x37:
                digits = bytes([e])
                while len(digits) < 3 and pos < n and 0x30 <= buf[pos] <= 0x37:
                    digits += buf[pos : pos + 1]
                    pos += 1
                out.append(int(digits, 8) & 0xFF)
            else:
                out += _ESCAPES.get(e, bytes([e]))
            continue
        if c == 0x28:
            depth += 1
        elif c == 0x29:
            depth -= 1
            if depth == 0:
                break
        out.append(c)
    return bytes(out)


def _filters(head: bytes) -> tuple[list[bytes], list[Params]]:
    m = _FILTER.search(head)
    if m is None:
        return [], []
    names = _NAME.findall(m.group(1))
    parms: list[Params] = []
    p = _PARMS.search(head)
    if p is not None:
        for item in _PARM_ITEM.finditer(p.group(1)):
            body = item.group(1) or b""
            parms.append({k: int(v) for k, v in _INT_KEY.findall(body)})
    parms += [{}] * (len(names) - len(parms))
    return names, parms


def _decode_stream(
    data: Buffer, start: int, end: int, head: bytes, label: str, ctx: WalkContext, part: str
) -> Child | None:
    names, parms = _filters(head)
    raw_len = end - start
    chunks: Chunks = _slices(data, start, end)
    applied: list[str] = []
    for name, params in zip(names, parms, strict=False):
        stage = _STAGES.get(name)
        if stage is None:
            break
        chunks = _metered(stage(chunks, params), raw_len, ctx)
        applied.append(name.decode("latin-1"))
    spool = ctx.spool()
    try:
        for chunk in chunks:
            spool.write(chunk)
            ctx.budget.check_ratio(raw_len, spool.size)
    except LimitExceeded:
        raise
    except (zlib.error, ValueError, binascii.Error, IndexError) as exc:
        ctx.warn(f"{part}/{label}", f"corrupt stream: {exc}")
    if spool.size == 0:
        return None
    return Child(label=label, data=spool.getvalue(), meta={"pdf_filters": applied})


def _slices(data: Buffer, start: int, end: int) -> Chunks:
    for pos in range(start, end, _IN_CHUNK):
        yield bytes(data[pos : min(end, pos + _IN_CHUNK)])


def _metered(chunks: Chunks, raw_len: int, ctx: WalkContext) -> Chunks:
    """Hold each stage of a chain to the ratio and time limits, not just the last."""
    total = 0
    for chunk in chunks:
        total += len(chunk)
        ctx.budget.check_ratio(raw_len, total)
        ctx.budget.check_time()
        yield chunk


def _flate(chunks: Chunks, params: Params) -> Chunks:
    return _predicted(_inflate(chunks), params)


def _inflate(chunks: Chunks) -> Chunks:
    dec = zlib.decompressobj()
    started = False
    for chunk in chunks:
        buf = chunk
        while buf:
            try:
                out = dec.decompress(buf, _OUT_CHUNK)
            except zlib.error:
                if started:
                    raise
                # some writers omit the zlib header: try raw deflate once
                dec = zlib.decompressobj(-15)
                out = dec.decompress(buf, _OUT_CHUNK)
            started = True
            if out:
                yield out
            if dec.eof:
                return
            buf = dec.unconsumed_tail
    tail = dec.flush()
    if tail:
        yield tail


_NOT_HEX = bytes(sorted(set(range(256)) - set(b"0123456789abcdefABCDEF")))
_NOT_A85 = bytes(sorted(set(range(256)) - set(range(0x21, 0x76)) - {ord("z")}))


def _ascii_hex(chunks: Chunks, params: Params) -> Chunks:
    carry = b""
    for chunk in chunks:
        gt = chunk.find(b">")
        digits = carry + (chunk if gt < 0 else chunk[:gt]).translate(None, _NOT_HEX)
        even = len(digits) & ~1
        carry = digits[even:]
        yield binascii.unhexlify(digits[:even])
        if gt >= 0:
            break
    if carry:
        yield binascii.unhexlify(carry + b"0")


def _ascii85(chunks: Chunks, params: Params) -> Chunks:
    carry = b""
    first = True
    for chunk in chunks:
        if first and chunk.lstrip().startswith(b"<~"):
            chunk = chunk.lstrip()[2:]
        first = False
        tilde = chunk.find(b"~")
        text = (chunk if tilde < 0 else chunk[:tilde]).translate(None, _NOT_A85)
        text = carry + text.replace(b"z", b"!!!!!")
        whole = len(text) - len(text) % 5
        carry = text[whole:]
        yield base64.a85decode(text[:whole])
        if tilde >= 0:
            break
    if len(carry) > 1:
        yield base64.a85decode(carry)


def _lzw(chunks: Chunks, params: Params) -> Chunks:
    early = params.get(b"EarlyChange", 1)
    table: list[bytes] = [bytes([i]) for i in range(256)] + [b"", b""]
    width = 9
    bits = nbits = 0
    prev: bytes | None = None
    for chunk in chunks:
        out = bytearray()
        for byte in chunk:
            bits = ((bits << 8) | byte) & 0xFFFFFF
            nbits += 8
            while nbits >= width:
                nbits -= width
                code = (bits >> nbits) & ((1 << width) - 1)
                if code == 256:
                    del table[258:]
                    width, prev = 9, None
                    continue
                if code == 257:
                    yield bytes(out)
                    return
                if code < len(table):
                    entry = table[code]
                elif prev is not None and code == len(table):
                    entry = prev + prev[:1]
                else:
                    raise ValueError(f"LZW code {code} out of range")
                out += entry
                if len(out) >= _OUT_CHUNK:
                    yield bytes(out)
                    out.clear()
                if prev is not None and len(table) < 4096:
                    table.append(prev + entry[:1])
                    if len(table) + early >= (1 << width) and width < 12:
                        width += 1
                prev = entry
        yield bytes(out)


def _run_length(chunks: Chunks, params: Params) -> Chunks:
    carry = b""
    for chunk in chunks:
        buf = carry + chunk
        out = bytearray()
        i, n = 0, len(buf)
        while i < n:
            length = buf[i]
            if length == 128:
                yield bytes(out)
                return
            if length < 128:
                if i + 1 + length + 1 > n:
                    break
                out += buf[i + 1 : i + 2 + length]
                i += 2 + length
            else:
                if i + 1 >= n:
                    break
                out += buf[i + 1 : i + 2] * (257 - length)
                i += 2
        carry = buf[i:]
        yield bytes(out)
    if carry[1:]:
        yield carry[1:]


def _predicted(chunks: Chunks, params: Params) -> Chunks:
    predictor = params.get(b"Predictor", 1)
    if predictor < 2:
        yield from chunks
        return
    held: list[bytes] = []
    size = 0
    for chunk in chunks:
        held.append(chunk)
        size += len(chunk)
        if size > _PREDICTOR_MAX:
            # too big to undo in Python: pass the filtered data on as it is
            yield from held
            yield from chunks
            return
    yield _unpredict(b"".join(held), params)


def _unpredict(data: bytes, params: Params) -> bytes:
    predictor = params.get(b"Predictor", 1)
    colors = max(1, params.get(b"Colors", 1))
    bpc = max(1, params.get(b"BitsPerComponent", 8))
    columns = max(1, params.get(b"Columns", 1))
    bpp = max(1, colors * bpc // 8)
    row_len = (colors * bpc * columns + 7) // 8
    out = bytearray()
    if predictor == 2:
        if bpc != 8:
            return data
        for r in range(0, len(data), row_len):
            row = bytearray(data[r : r + row_len])
            for i in range(bpp, len(row)):
                row[i] = (row[i] + row[i - bpp]) & 0xFF
            out += row
        return bytes(out)
    prior = bytearray(row_len)
    for r in range(0, len(data), row_len + 1):
        kind = data[r]
        row = bytearray(data[r + 1 : r + 1 + row_len])
        row += bytes(row_len - len(row))
        _png_row(kind, row, prior, bpp)
        out += row
        prior = row
    return bytes(out)


def _png_row(kind: int, row: bytearray, prior: bytearray, bpp: int) -> None:
    n = len(row)
    if kind == 1:
        for i in range(bpp, n):
            row[i] = (row[i] + row[i - bpp]) & 0xFF
    elif kind == 2:
        for i in range(n):
            row[i] = (row[i] + prior[i]) & 0xFF
    elif kind == 3:
        for i in range(n):
            left = row[i - bpp] if i >= bpp else 0
            row[i] = (row[i] + ((left + prior[i]) >> 1)) & 0xFF
    elif kind == 4:
        for i in range(n):
            a = row[i - bpp] if i >= bpp else 0
            b = prior[i]
            c = prior[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            row[i] = (row[i] + pred) & 0xFF


_STAGES: dict[bytes, Callable[[Chunks, Params], Chunks]] = {
    b"FlateDecode": _flate,
    b"Fl": _flate,
    b"ASCIIHexDecode": _ascii_hex,
    b"AHx": _ascii_hex,
    b"ASCII85Decode": _ascii85,
    b"A85": _ascii85,
    b"LZWDecode": lambda chunks, params: _predicted(_lzw(chunks, params), params),
    b"LZW": lambda chunks, params: _predicted(_lzw(chunks, params), params),
    b"RunLengthDecode": _run_length,
    b"RL": _run_length,
}
