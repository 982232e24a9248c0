"""Lenient header parsing: header blocks, parameters (RFC 2045/2231), encoded words (RFC 2047).

Used by the MIME splitter (``mime/split.py``) for the few headers it needs, and
by the rest of the project wherever a header from hostile mail must be read
(policy rules, notifications, the quarantine index)::

    headers = parse_headers(block)                 # [("Content-Type", "text/plain; ...")]
    ctype, params = header_params(value)           # ("text/plain", {"charset": "utf-8"})
    name = decode_rfc2047("=?utf-8?q?r=C3=A9sum=C3=A9.pdf?=")

Everything here accepts any input without raising: bare LF or CRLF line ends,
missing separators, unbalanced quotes, unknown charsets, broken base64.

SECURITY: pure functions on untrusted bytes, no privileges.  Work is linear in
the input; callers bound the input (the splitter passes at most
``Limits.max_header_bytes``).  Charsets are looked up only as text codecs
(``bytes.decode`` refuses ``zlib_codec`` and friends), so a header cannot
trigger decompression.
"""

from __future__ import annotations

import binascii
import re
import urllib.parse

from mailwarden.engine.mime.codec import b64decode_lenient

#: a header field name (RFC 5322 ftext), with the blanks some mailers put before the colon
_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_BLANK_BETWEEN_WORDS = re.compile(r"(\?=)[ \t\r\n]+(=\?)")
_QP_HEADER_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
_SECTION = re.compile(r"^(.*?)\*(\d{1,4})(\*?)$")
#: more continuation sections than any real name needs
_MAX_SECTIONS = 256


def decode_bytes(raw: bytes, charset: str | None = None) -> str:
    """Decode ``raw`` with ``charset`` if it is a known text codec, else UTF-8, else Latin-1."""
    if charset:
        try:
            return raw.decode(charset.strip().strip('"').lower(), "replace")
        except (LookupError, ValueError):
            pass
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def scan_header_lines(buf: bytes, start: int, end: int) -> tuple[list[tuple[str, str]], int]:
    """Parse the header lines in ``buf[start:end]`` up to the first line that is not one.

    Returns the unfolded ``(name, value)`` pairs and the offset where parsing
    stopped: the start of the blank line, of the first non-header line, or ``end``.
    A leading mbox ``From `` line is skipped.
    """
    headers: list[tuple[str, str]] = []
    name: bytes | None = None
    value: list[bytes] = []
    pos = start
    if buf.startswith(b"From ", start):
        nl = buf.find(b"\n", start, end)
        pos = end if nl < 0 else nl + 1
    while pos < end:
        nl = buf.find(b"\n", pos, end)
        line_end = end if nl < 0 else nl + 1
        line = buf[pos:line_end].rstrip(b"\r\n")
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            if name is None:
                break
            value.append(line)
        else:
            m = _FIELD.match(line)
            if m is None:
                break
            if name is not None:
                headers.append(_finish(name, value))
            name = m.group(1)
            value = [line[m.end() :]]
        pos = line_end
    if name is not None:
        headers.append(_finish(name, value))
    return headers, pos


def _finish(name: bytes, value: list[bytes]) -> tuple[str, str]:
    # RFC 5322 unfolding removes only the line breaks; the folding blanks stay
    return name.decode("latin-1"), decode_bytes(b"".join(value).strip())


def parse_headers(block: bytes) -> list[tuple[str, str]]:
    """Return the unfolded ``(name, value)`` pairs of a header block, in order.

    Parsing stops at the first blank line or at the first line that is neither a
    header nor a continuation; values are not RFC 2047-decoded.
    """
    return scan_header_lines(block, 0, len(block))[0]


def decode_rfc2047(value: str | bytes) -> str:
    """Decode RFC 2047 encoded words (``=?charset?B|Q?text?=``) anywhere in ``value``.

    Blanks between adjacent encoded words are dropped, as the RFC says; words
    with unknown charsets or broken encodings decode as well as they can.
    """
    text = decode_bytes(value) if isinstance(value, bytes) else value
    if "=?" not in text:
        return text
    text = _BLANK_BETWEEN_WORDS.sub(r"\1\2", text)
    return _ENCODED_WORD.sub(_decode_word, text)


def _decode_word(m: re.Match[str]) -> str:
    charset = m.group(1).split("*", 1)[0]  # RFC 2231 adds "*language"
    payload = m.group(3).encode("latin-1", "replace")
    if m.group(2) in "bB":
        raw = b64decode_lenient(payload)
    else:
        raw = _QP_HEADER_ESCAPE.sub(
            lambda e: binascii.unhexlify(e.group(1)), payload.replace(b"_", b" ")
        )
    return decode_bytes(raw, charset)


def header_params(value: str) -> tuple[str, dict[str, str]]:
    """Split ``value; a=1; b="x"`` into its main value and its parameters.

    Parameter names are lower-cased; the first occurrence of a name wins.
    RFC 2231 values (``name*=utf-8''%E2%82%AC``) and continuations
    (``name*0*=...; name*1=...``) are joined and decoded under the plain name.
    Quoted strings may hold ``;`` and backslash escapes; an unclosed quote runs
    to the end.
    """
    parts = _split_params(value)
    main = parts[0].strip() if parts else ""
    plain: dict[str, str] = {}
    sections: dict[str, dict[int, tuple[str, bool]]] = {}
    extended: dict[str, str] = {}
    for part in parts[1:]:
        key, sep, raw = part.partition("=")
        if not sep:
            continue
        key = key.strip().lower()
        val = _unquote(raw.strip())
        if not key:
            continue
        m = _SECTION.match(key)
        if m is not None:
            secs = sections.setdefault(m.group(1), {})
            if len(secs) < _MAX_SECTIONS:
                secs.setdefault(int(m.group(2)), (val, bool(m.group(3))))
        elif key.endswith("*"):
            extended.setdefault(key[:-1], _decode_2231(val))
        else:
            plain.setdefault(key, val)
    for key, secs in sections.items():
        extended.setdefault(key, _join_sections(secs))
    # an RFC 2231 value is the sender's precise form; it beats the plain one
    plain.update(extended)
    return main, plain


def _split_params(value: str) -> list[str]:
    out: list[str] = []
    cur: list[str] = []
    quoted = escaped = False
    for ch in value:
        if escaped:
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == ";" and not quoted:
            out.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur))
    return out


def _unquote(val: str) -> str:
    if not val.startswith('"'):
        return val
    body = val[1:]
    end = len(body)
    out: list[str] = []
    i = 0
    while i < end:
        ch = body[i]
        if ch == "\\" and i + 1 < end:
            out.append(body[i + 1])
            i += 2
            continue
        if ch == '"':
            break
        out.append(ch)
        i += 1
    return "".join(out)


def _decode_2231(val: str) -> str:
    """Decode one ``charset'lang'percent-encoded`` value."""
    charset: str | None = None
    if val.count("'") >= 2:
        charset, _lang, val = val.split("'", 2)
    return decode_bytes(urllib.parse.unquote_to_bytes(val), charset)


def _join_sections(secs: dict[int, tuple[str, bool]]) -> str:
    charset: str | None = None
    raw = bytearray()
    for index in sorted(secs):
        val, encoded = secs[index]
        if encoded:
            if index == min(secs) and val.count("'") >= 2:
                charset, _lang, val = val.split("'", 2)
            raw += urllib.parse.unquote_to_bytes(val)
        else:
            raw += val.encode("utf-8")
    return decode_bytes(bytes(raw), charset)
