"""The clamd wire protocol, without I/O: command framing and parsing, reply text.

Used by the daemon's connection handler (``session.py``) and by the clients
(``client.py``), so both sides agree byte for byte::

    framer = CommandFramer()
    framer.feed(data)
    raw = framer.next_command()           # RawCommand(style, body) or None
    cmd = parse_command(raw)              # Command or None for UNKNOWN COMMAND
    reply(cmd.term, "PONG", session_id=3) # b"3: PONG\\0"

A command is ``z<NAME>[ <arg>]\\0`` (NUL-terminated, replies end in NUL),
``n<NAME>[ <arg>]\\n`` (newline-terminated, replies end in a newline) or, for
clamd's older commands only, a bare ``<NAME>[ <arg>]\\n``.  Stream data
(INSTREAM, MAILSCAN) follows the command as chunks: a 4-byte big-endian length,
then that many bytes; a zero length ends the stream.  The reply strings below
are clamd's own (ClamAV 1.x), checked against Debian's clamd.

SECURITY: everything parsed here comes from any local process allowed to
connect.  Framing is bounded (``MAX_COMMAND``); names taken from the input are
only echoed back after :func:`clean_name` removes the terminators and control
characters a client could use to forge extra reply lines.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from mailwarden.verdict import Category, Finding, Status, Verdict, display_name

#: Longest command line accepted (MAILSCAN carries its envelope on the line).
MAX_COMMAND = 64 * 1024

#: The ClamAV release whose reply format the daemon reproduces; VERSION reports it.
CLAMAV_COMPAT = "1.4.6"

PONG = "PONG"
RELOADING = "RELOADING"
UNKNOWN_COMMAND = "UNKNOWN COMMAND"
COMMAND_READ_TIMED_OUT = "COMMAND READ TIMED OUT"
SIZE_LIMIT_EXCEEDED = "INSTREAM size limit exceeded. ERROR"
INVALID_IN_SESSION = "Command invalid inside IDSESSION. ERROR"
NO_FILE_DESCRIPTOR = "No file descriptor received. ERROR"
TIME_LIMIT = "Time limit reached"
QUEUE_FULL = "Queue full, try again later."
TOO_MANY_CONNECTIONS = "Too many connections. ERROR"
PATH_SCANS_DISABLED = "Path scanning disabled by configuration."
UNSCANNED_NAME = "Heuristics.Unscanned"
UNOFFICIAL_SUFFIX = ".UNOFFICIAL"
STREAM_NAME = "stream"

CHUNK_HEADER = struct.Struct(">I")


class Style(enum.Enum):
    """How a command was framed; it decides the reply terminator."""

    NUL = "z"
    NEWLINE = "n"
    OLD = ""

    @property
    def term(self) -> bytes:
        return b"\0" if self is Style.NUL else b"\n"


@dataclass(frozen=True, slots=True)
class _Spec:
    needs_arg: bool
    old_style: bool
    in_session: bool


# Order matters twice: it is VERSIONCOMMANDS' list, and clamd matches by prefix
# in this order (VERSIONCOMMANDS before VERSION).
_SPECS: dict[str, _Spec] = {
    "SCAN": _Spec(True, True, True),
    "QUIT": _Spec(False, True, False),
    "RELOAD": _Spec(False, True, False),
    "PING": _Spec(False, True, True),
    "CONTSCAN": _Spec(True, True, False),
    "VERSIONCOMMANDS": _Spec(False, False, True),
    "VERSION": _Spec(False, True, True),
    "END": _Spec(False, False, True),
    "SHUTDOWN": _Spec(False, True, False),
    "MULTISCAN": _Spec(True, True, False),
    "FILDES": _Spec(False, True, True),
    "STATS": _Spec(False, False, True),
    "IDSESSION": _Spec(False, False, False),
    "INSTREAM": _Spec(False, False, True),
    "DETSTATSCLEAR": _Spec(False, True, False),
    "DETSTATS": _Spec(False, True, False),
    "ALLMATCHSCAN": _Spec(True, False, False),
    "MAILSCAN": _Spec(True, False, True),
}

#: Every command, in the order VERSIONCOMMANDS lists them.
COMMANDS: tuple[str, ...] = tuple(_SPECS)


@dataclass(frozen=True, slots=True)
class RawCommand:
    """One framed command line, terminator removed."""

    style: Style
    body: bytes


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    arg: str | None
    style: Style

    @property
    def term(self) -> bytes:
        return self.style.term

    @property
    def allowed_in_session(self) -> bool:
        return _SPECS[self.name].in_session


class CommandTooLong(Exception):
    """No terminator within :data:`MAX_COMMAND` bytes."""

    def __init__(self, style: Style) -> None:
        super().__init__("command too long")
        self.style = style


class CommandFramer:
    """Splits a byte stream into command lines; stream data is read elsewhere."""

    def __init__(self, limit: int = MAX_COMMAND) -> None:
        self.buffer = bytearray()
        self.limit = limit

    def feed(self, data: bytes) -> None:
        self.buffer += data

    def take(self, n: int) -> bytes:
        """Remove and return up to ``n`` buffered bytes (stream data after a command)."""
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out

    def next_command(self, *, at_eof: bool = False) -> RawCommand | None:
        """The next complete command, or None until more bytes arrive.

        ``at_eof``: the client closed its side, so an unterminated old-style
        line counts as complete, as clamd does for ``echo -n PING``.
        """
        if not self.buffer:
            return None
        style = _style_of(self.buffer[0])
        start = 1 if style is not Style.OLD else 0
        end = self.buffer.find(style.term, start)
        if style is Style.OLD:
            # clamd's line reader also stops at a NUL in an old-style command
            nul = self.buffer.find(b"\0")
            if nul >= 0 and (end < 0 or nul < end):
                end = nul
        if end < 0:
            if len(self.buffer) > self.limit:
                raise CommandTooLong(style)
            if at_eof and style is Style.OLD:
                end = len(self.buffer)
            else:
                return None
        if end > self.limit:
            raise CommandTooLong(style)
        body = bytes(self.buffer[start:end])
        del self.buffer[: end + 1]
        return RawCommand(style, body)


def _style_of(first: int) -> Style:
    if first == ord("z"):
        return Style.NUL
    if first == ord("n"):
        return Style.NEWLINE
    return Style.OLD


def parse_command(raw: RawCommand) -> Command | None:
    """The command named by ``raw``, or None when clamd would say UNKNOWN COMMAND."""
    body = raw.body
    if raw.style is Style.OLD:
        body = body.rstrip(b"\r")
    name_bytes, sep, arg_bytes = body.partition(b" ")
    try:
        name = name_bytes.decode("ascii")
    except UnicodeDecodeError:
        return None
    spec = _SPECS.get(name)
    if spec is None:
        return None
    if raw.style is Style.OLD and not spec.old_style:
        return None
    if spec.needs_arg:
        if not sep or not arg_bytes:
            return None
        # paths are bytes on Linux: keep undecodable ones intact for os.* calls
        return Command(name, arg_bytes.decode("utf-8", "surrogateescape"), raw.style)
    if sep:
        return None
    return Command(name, None, raw.style)


def reply(term: bytes, text: str, *, session_id: int = 0) -> bytes:
    """One reply line: ``[<id>: ]<text><term>``."""
    prefix = f"{session_id}: " if session_id else ""
    return (prefix + text).encode("utf-8", "surrogateescape") + term


def clean_name(name: str) -> str:
    """A name from a request or from mail, safe inside one reply line."""
    return display_name(name, limit=4096)


def signature_name(finding: Finding) -> str:
    """The name clamd would print: unofficial databases get their suffix."""
    name = clean_name(finding.name)
    return name if finding.official else name + UNOFFICIAL_SUFFIX


def found(name: str, signature: str) -> str:
    return f"{name}: {signature} FOUND"


def ok(name: str) -> str:
    return f"{name}: OK"


def error(name: str, message: str) -> str:
    return f"{name}: {message} ERROR"


def verdict_lines(
    name: str, verdict: Verdict, *, unscanned: str = "error", all_matches: bool = False
) -> list[str]:
    """The reply lines clamd would send for one scanned object.

    Infected and suspicious findings are FOUND (clamd reports its own
    heuristics that way); with ``all_matches`` every finding gets a line.
    ``unscanned`` chooses what a partly scanned object looks like to a clamd
    client: ``error`` (it retries later), ``found`` or ``ok``.
    """
    shown = [f for f in verdict.findings if f.category in (Category.INFECTED, Category.SUSPICIOUS)]
    if shown:
        picked = shown if all_matches else shown[:1]
        return [found(name, signature_name(f)) for f in picked]
    if verdict.status is Status.ERROR:
        return [error(name, reason_text(verdict.reason or "Scan failed"))]
    if verdict.status is Status.UNSCANNED:
        if unscanned == "found":
            return [found(name, UNSCANNED_NAME)]
        if unscanned == "error":
            reason = reason_text(verdict.reason or "unscanned")
            return [error(name, f"Not scanned completely ({reason}).")]
    return [ok(name)]


def reason_text(text: str) -> str:
    # clamdscan splits a reply at its last colon, so a colon inside the
    # message would cut it short; MAILSCAN keeps the exact text
    return clean_name(text).replace(": ", " - ").replace(":", " ")


def is_failure(line: str) -> bool:
    return line.endswith(" ERROR")


def is_found(line: str) -> bool:
    return line.endswith(" FOUND")


# --- the client's side -------------------------------------------------------


def command(name: str, arg: str | None = None) -> bytes:
    """A z-style command as a client sends it."""
    text = name if arg is None else f"{name} {arg}"
    return b"z" + text.encode("utf-8", "surrogateescape") + b"\0"


def chunks(data: bytes | memoryview, size: int = 64 * 1024) -> list[bytes | memoryview]:
    """Stream data framed as INSTREAM chunks, end marker included."""
    view = memoryview(data)
    out: list[bytes | memoryview] = []
    for offset in range(0, len(view), size):
        part = view[offset : offset + size]
        out.append(CHUNK_HEADER.pack(len(part)))
        out.append(part)
    out.append(CHUNK_HEADER.pack(0))
    return out


def split_session_reply(line: str) -> tuple[int, str]:
    """``"3: stream: OK"`` -> ``(3, "stream: OK")``; ``(0, line)`` without an id."""
    head, sep, rest = line.partition(": ")
    if sep and head.isdigit():
        return int(head), rest
    return 0, line
