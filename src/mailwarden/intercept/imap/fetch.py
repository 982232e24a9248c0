"""FETCH on the wire: the items of a FETCH response, and the FETCH command rewritten
so that the proxy always sees the whole message.

::

    resp = parse_fetch(raw)                   # None when raw is not "* n FETCH (...)"
    resp.seq, [(i.label, i.value) for i in resp.items]
    compose_fetch(resp.seq, [(label, value), ...])

    cmd = parse_fetch_command(b"a1 UID FETCH 1:* (FLAGS BODY.PEEK[]<0.1024>)")
    cmd.content                               # True: it asks for message content
    cmd.rewritten()                           # ... (FLAGS BODY.PEEK[]<0.1024> BODY.PEEK[] UID)

An item's ``label`` is its name as sent (``BODY[HEADER.FIELDS (SUBJECT)]<0>``);
``key`` is the label upper-cased, with ``.PEEK`` and a partial's count
removed, so a response item finds the request item it answers.

SECURITY: input from both sides is untrusted; parsing is linear and raises
:class:`~mailwarden.intercept.imap.wire.ImapError` only.  Anything that
names message content counts as content (BODY[...], BINARY[...],
BINARY.SIZE[...], RFC822, RFC822.HEADER, RFC822.TEXT, PREVIEW), so no
spelling of a content fetch slips past the scanner.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailwarden.intercept.imap.wire import ImapError, atom_end, skip_value

_FETCH = re.compile(rb"\* (\d{1,10}) FETCH \(", re.IGNORECASE)
_COMMAND = re.compile(rb"(\S+) ((?:UID )?)FETCH (\S+) ", re.IGNORECASE)
_PARTIAL = re.compile(rb"<(\d+)(?:\.(\d+))?>$")
_CONTENT = (b"BODY[", b"BINARY[", b"BINARY.SIZE[", b"RFC822", b"PREVIEW")
#: the items whose value is the whole message
FULL = (b"BODY[]", b"RFC822")
#: items a replacement changes that are not content
_SIZES = (b"RFC822.SIZE", b"BODYSTRUCTURE", b"BODY")


def key_of(label: bytes) -> bytes:
    """``BODY.PEEK[TEXT]<0.10>`` -> ``BODY[TEXT]<0>``; ``RFC822.PEEK`` does not exist."""
    name = label.upper().replace(b".PEEK[", b"[", 1)
    return _PARTIAL.sub(lambda m: b"<" + m.group(1) + b">", name)


def is_content(label: bytes) -> bool:
    name = key_of(label)
    if name == b"RFC822.SIZE":
        return False
    return name.startswith(_CONTENT)


def partial(label: bytes) -> tuple[int, int | None] | None:
    """(origin, count) of ``...<origin.count>`` (count None in a response's ``<origin>``)."""
    match = _PARTIAL.search(label)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)) if match.group(2) else None


@dataclass(frozen=True, slots=True)
class Item:
    label: bytes
    value: bytes

    @property
    def key(self) -> bytes:
        return key_of(self.label)


@dataclass(frozen=True, slots=True)
class FetchResponse:
    seq: int
    items: tuple[Item, ...]

    def get(self, key: bytes) -> Item | None:
        for item in self.items:
            if item.key == key:
                return item
        return None


def parse_fetch(raw: bytes) -> FetchResponse | None:
    """The items of an untagged FETCH response; None when ``raw`` is another response."""
    match = _FETCH.match(raw)
    if match is None:
        return None
    pos = match.end()
    items: list[Item] = []
    while True:
        if raw[pos : pos + 1] == b")":
            if raw[pos + 1 :] not in (b"\r\n", b"\n"):
                raise ImapError("data after the FETCH response")
            return FetchResponse(int(match.group(1)), tuple(items))
        label_end = atom_end(raw, pos)
        if raw[label_end : label_end + 1] != b" ":
            raise ImapError("item without a value")
        value_end = skip_value(raw, label_end + 1)
        items.append(Item(raw[pos:label_end], raw[label_end + 1 : value_end]))
        pos = value_end
        if raw[pos : pos + 1] == b" ":
            pos += 1


def compose_fetch(seq: int, items: list[tuple[bytes, bytes]]) -> bytes:
    return (
        b"* %d FETCH (" % seq + b" ".join(label + b" " + value for label, value in items) + b")\r\n"
    )


@dataclass(frozen=True, slots=True)
class FetchCommand:
    tag: bytes
    uid: bool
    sequence: bytes
    items: tuple[bytes, ...]
    #: what follows the items (RFC 7162 modifiers such as ``(CHANGEDSINCE 12)``)
    rest: bytes
    #: every message it names has a verdict already: the proxy adds nothing
    cached: bool = False

    @property
    def content(self) -> bool:
        return any(is_content(i) for i in self.items)

    @property
    def full(self) -> bool:
        """Whether one of its items already brings the whole message."""
        return any(key_of(i) in FULL for i in self.items)

    @property
    def wants_uid(self) -> bool:
        return self.uid or any(i.upper() == b"UID" for i in self.items)

    @property
    def sizes(self) -> bool:
        """Whether it asks for what a replacement changes besides content."""
        return any(key_of(i) in _SIZES for i in self.items)

    def added(self) -> tuple[bytes, ...]:
        """Items the proxy adds: the whole message (for content) and the UID."""
        extra: list[bytes] = []
        if self.cached:
            return ()
        if self.content and not self.full:
            extra.append(b"BODY.PEEK[]")
        if not self.wants_uid:
            extra.append(b"UID")
        return tuple(extra)

    def uids(self, limit: int = 1000) -> list[int] | None:
        """The UIDs a UID FETCH names, when it names them all explicitly (no ``*``)
        and not more than ``limit``; None otherwise."""
        if not self.uid or b"*" in self.sequence:
            return None
        out: list[int] = []
        for part in self.sequence.split(b","):
            low, _, high = part.partition(b":")
            if not low.isdigit() or (high and not high.isdigit()):
                return None
            first, last = sorted((int(low), int(high or low)))
            if last - first + len(out) >= limit:
                return None
            out.extend(range(first, last + 1))
        return out

    def rewritten(self) -> bytes:
        items = b" ".join((*self.items, *self.added()))
        uid = b"UID " if self.uid else b""
        return b"%s %sFETCH %s (%s)%s\r\n" % (self.tag, uid, self.sequence, items, self.rest)

    def requested(self, key: bytes) -> bytes | None:
        """The label the client asked with for a response item's ``key``."""
        for item in self.items:
            if key_of(item) == key:
                return item
        return None


_MACROS = {
    b"ALL": (b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", b"ENVELOPE"),
    b"FAST": (b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE"),
    b"FULL": (b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", b"ENVELOPE", b"BODY"),
}


def parse_fetch_command(line: bytes) -> FetchCommand | None:
    """A FETCH or UID FETCH command line (no literals); None for other commands."""
    text = line.rstrip(b"\r\n")
    match = _COMMAND.match(text)
    if match is None:
        return None
    pos = match.end()
    if text[pos : pos + 1] == b"(":
        end = skip_value(text, pos)
        inner = text[pos + 1 : end - 1]
        items: list[bytes] = []
        i = 0
        while i < len(inner):
            if inner[i : i + 1] == b" ":
                i += 1
                continue
            j = atom_end(inner, i)
            items.append(inner[i:j])
            i = j
    else:
        end = atom_end(text, pos)
        single = text[pos:end]
        items = list(_MACROS.get(single.upper(), (single,)))
    if not items:
        raise ImapError("FETCH without items")
    return FetchCommand(
        tag=match.group(1),
        uid=bool(match.group(2)),
        sequence=match.group(3),
        items=tuple(items),
        rest=text[end:],
    )
