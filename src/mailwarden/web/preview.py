"""A quarantined message shown as data: its headers and its parts as a tree.

Usage::

    view = preview(raw)
    view.headers        # [(name, decoded value)], control characters replaced
    view.parts          # PartView in tree order, each with its depth
    view.truncated      # the message was larger than the preview reads

The message is parsed leniently (broken MIME still shows what can be read)
and never rendered: text parts, HTML ones included, are handed to the
template as plain text, which escapes them, so no markup, script, image or
link from the mail ever becomes live in the administrator's browser.

SECURITY: input is hostile.  Only the first :data:`MAX_BYTES` are parsed,
at most :data:`MAX_PARTS` parts to :data:`MAX_DEPTH` levels, text excerpts
are cut at :data:`MAX_TEXT` characters, and every string goes through
``display_name`` (no control or bidi characters).  Attachment names are
shown, never used as paths.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser

from mailwarden.verdict import display_name

MAX_BYTES = 10 * 1024 * 1024
MAX_PARTS = 500
MAX_DEPTH = 20
MAX_TEXT = 20_000
MAX_HEADERS = 300


@dataclass(frozen=True, slots=True)
class PartView:
    path: str
    depth: int
    content_type: str
    filename: str
    size: int
    text: str | None = None
    note: str = ""


@dataclass
class MessageView:
    headers: list[tuple[str, str]] = field(default_factory=list)
    parts: list[PartView] = field(default_factory=list)
    truncated: bool = False
    notes: list[str] = field(default_factory=list)


def header_text(value: object, limit: int = 2000) -> str:
    # 8-bit bytes come from the parser as surrogates: read them as UTF-8
    text = str(value).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    # an undecodable encoded-word is shown as it came
    with contextlib.suppress(ValueError, LookupError, UnicodeError, AssertionError):
        text = str(make_header(decode_header(text)))
    return display_name(" ".join(text.split()), limit)


def preview(raw: bytes) -> MessageView:
    view = MessageView(truncated=len(raw) > MAX_BYTES)
    message = BytesParser(policy=policy.compat32).parsebytes(raw[:MAX_BYTES])
    for name, value in list(message.raw_items())[:MAX_HEADERS]:
        view.headers.append((display_name(str(name), 100), header_text(value)))
    # numbered as the engine names parts in findings: the top level's parts are 1, 2...
    _walk(message, "", 0, view)
    if len(view.parts) >= MAX_PARTS:
        view.notes.append(f"only the first {MAX_PARTS} parts are listed")
    for defect in message.defects[:10]:
        view.notes.append(display_name(type(defect).__name__, 100))
    return view


def _walk(part: Message, path: str, depth: int, view: MessageView) -> None:
    if len(view.parts) >= MAX_PARTS:
        return
    content_type = display_name(part.get_content_type(), 100)
    filename = display_name(_filename(part), 200)
    if part.is_multipart():
        children = part.get_payload()
        view.parts.append(PartView(path, depth, content_type, filename, 0))
        if depth + 1 >= MAX_DEPTH:
            view.notes.append(f"parts deeper than {MAX_DEPTH} levels are not listed")
            return
        if isinstance(children, list):
            for index, child in enumerate(children, 1):
                if isinstance(child, Message):
                    _walk(child, f"{path}.{index}" if path else str(index), depth + 1, view)
        return
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # a decoder that chokes on hostile input: show the part anyway
        payload = None
    data = payload if isinstance(payload, bytes) else b""
    text = None
    note = ""
    if part.get_content_maintype() == "text" and not filename:
        text = _decode(data, part.get_content_charset())
        if len(text) > MAX_TEXT:
            text, note = text[:MAX_TEXT], f"first {MAX_TEXT} characters"
        text = "\n".join(display_name(line, MAX_TEXT) for line in text.splitlines())
        if part.get_content_subtype() == "html":
            note = ("HTML source, shown as text; " + note).rstrip("; ")
    view.parts.append(PartView(path, depth, content_type, filename, len(data), text, note))


def _filename(part: Message) -> str:
    try:
        name = part.get_filename()
    except (ValueError, LookupError, UnicodeError):
        return "(unreadable name)"
    return header_text(name, 200) if name else ""


def _decode(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(charset or "utf-8", "replace")
    except LookupError:
        return data.decode("latin-1")
