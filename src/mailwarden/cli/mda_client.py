"""The fast path of ``mailwarden mda`` and ``mailwarden pipe``: hand the message to the mda agent.

::

    code = fast_path("mda", sys.argv[2:])       # None: take the ordinary (argparse) path
    code, unreachable = attempt("mda", config, sender, recipients, command)  # may exec the MDA

The MTA starts ``mailwarden mda`` once per delivery, so what this process
imports is paid on every message.  This module uses the standard library
only: it reads the four ``[mda]`` keys it needs straight from the TOML files
(no validation: a value it cannot use sends the delivery down the in-process
path, whose loader reports the problem with file, line and key), connects to
the resident agent (``mailwarden mda-agent``), passes it the message as a
file descriptor (``SCM_RIGHTS``) with the envelope, and receives the exit
status, the one-line reason for standard error and, when the policy
delivers, a descriptor of the copy to deliver.  ``mda`` then replaces itself
with the original MDA reading that copy; ``pipe`` copies it to standard
output.

It lives here rather than in ``mailwarden.intercept.mda`` (whose agent,
``server.py``, speaks the same wire format through it) because importing
anything under ``mailwarden.intercept`` loads that package's SMTP agents.

Wire format (both directions, one frame each): ``LENGTH ":" BODY``, BODY the
fields joined by NUL bytes (NUL cannot occur in a command-line argument).

* request: ``mwmda1``, the verb (``mda`` or ``pipe``), the sender, then
  each recipient; a descriptor of a regular file holding standard input
  rides along;
* reply: ``mwmda1``, the exit status, ``deliver`` or ``exit``, the exit
  status to use when the copy cannot be handed on, the line for standard
  error (empty: none); with ``deliver``, a descriptor of the copy (the mbox
  ``From `` line included).

Once the message has left standard input there is no way back: a failure
after that (the agent dies, answers garbage or nothing within
``[mda] agent_timeout``) is a temporary failure (``[mda] exit_tempfail``),
never a second attempt in this process that could deliver twice.

SECURITY: the agent's socket comes from the configuration (trusted).  The
descriptor received from the agent is only read.  Nothing from the message
reaches a command line; the MDA is executed without a shell, from the
MTA's own command line.
"""

from __future__ import annotations

# _socket, not socket: the wrapper module loads enum and selectors, milliseconds that every
# delivery would pay; the C module has all this needs (and socket.socket derives from it)
import _socket as socket
import os
import struct
import sys

TYPE_CHECKING = False  # typing and collections.abc cost milliseconds on every delivery
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn

MAGIC = b"mwmda1"
#: a request or reply larger than this is malformed (an envelope is small)
MAX_FRAME = 64 * 1024
#: standard input is kept in memory (a memfd) up to this size, then in an unlinked file
SPILL = 1024 * 1024
_PIECE = 64 * 1024
#: a descriptor in SCM_RIGHTS is a C int (array would load collections.abc)
_FD_SIZE = struct.calcsize("i")
_CONNECT_TIMEOUT = 5.0

# mirrors of the schema's defaults for the keys read here (a test keeps them equal)
DEFAULT_AGENT = "auto"
DEFAULT_AGENT_SOCKET = "/run/mailwarden/mda.sock"
DEFAULT_AGENT_TIMEOUT = 180.0
DEFAULT_TEMPFAIL = 75
#: the ``[mda]`` keys read here; a file that names none of them is not parsed
_KEYS = ("agent", "agent_socket", "agent_timeout", "exit_tempfail")
_DEFAULT_CONFIG = "/etc/mailwarden/mailwarden.toml"
_ENV_VAR = "MAILWARDEN_CONFIG"


class WireError(Exception):
    """A frame that does not follow the wire format."""


class Route:
    """Where the agent listens and how to use it (``[mda] agent*``)."""

    __slots__ = ("mode", "socket", "tempfail", "timeout")

    def __init__(self, mode: str, path: str, timeout: float, tempfail: int) -> None:
        self.mode = mode
        self.socket = path
        self.timeout = timeout
        self.tempfail = tempfail


# --- configuration --------------------------------------------------------------------


def agent_route(config_path: str | None) -> Route | None:
    """The agent settings, or None when the delivery runs in this process.

    None for ``[mda] agent = "off"`` and for anything this reader does not
    understand: the in-process path then loads the whole configuration and
    reports what is wrong.
    """
    values: dict[str, object] = {}
    try:
        for name in _config_files(config_path):
            with open(name, "rb") as fh:
                data = fh.read()
            if b"agent" not in data and b"exit_tempfail" not in data:
                continue
            text = data.decode("utf-8")
            found = simple_keys(text)
            if found is None:
                section = _toml(text).get("mda", {})
                if not isinstance(section, dict):
                    return None
                found = {k: v for k, v in section.items() if k in _KEYS}
            values.update(found)
    except (OSError, ValueError):  # TOMLDecodeError and UnicodeDecodeError are ValueErrors
        return None
    mode = values.get("agent", DEFAULT_AGENT)
    path = values.get("agent_socket", DEFAULT_AGENT_SOCKET)
    timeout = values.get("agent_timeout", DEFAULT_AGENT_TIMEOUT)
    tempfail = values.get("exit_tempfail", DEFAULT_TEMPFAIL)
    if mode not in ("auto", "require") or not isinstance(path, str) or not path:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        return None
    if isinstance(tempfail, bool) or not isinstance(tempfail, int) or not 0 < tempfail < 256:
        return None
    return Route(str(mode), path, float(timeout), tempfail)


def simple_keys(text: str) -> dict[str, object] | None:
    """The :data:`_KEYS` set in ``[mda]``, when every mention of them is a plain line.

    ``tomllib`` loads ``re``, ``typing`` and ``datetime``: more than the rest
    of a delivery through the agent.  Most files set these keys as
    ``key = "string"`` or ``key = number`` lines under ``[mda]``; this reads
    exactly those, and returns None (parse the file with tomllib) when a key
    is written any other way, outside ``[mda]``, or the file has a
    multi-line string, whose lines could look like anything.
    """
    if '"""' in text or "'''" in text:
        return None
    found: dict[str, object] = {}
    table = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            # [table] or [[array.of.tables]], nothing quoted; anything else: tomllib
            double = line.startswith("[[")
            head, sep, rest = line[2 if double else 1 :].partition("]]" if double else "]")
            if not sep or not _is_comment(rest) or '"' in head or "'" in head or "[" in head:
                return None
            table = head.strip()
            if double and table.split(".")[0].strip() == "mda":
                return None
            if double:
                table = "[[" + table
            continue
        if not any(key in line for key in _KEYS):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if table != "mda":
            if table == "" and key.strip("\"'").startswith("mda"):
                return None  # mda.agent = ..., mda = { agent = ... }
            continue  # [serve] agents = ["mda-agent"] and the like
        if not sep or not key.replace("_", "").isalnum():
            return None  # a quoted or dotted key, a value over several lines
        if key not in _KEYS:
            continue  # agent_socket_mode, agent_max_requests: the agent's own keys
        parsed = _simple_value(value.strip())
        if parsed is None:
            return None
        found[key] = parsed[0]
    return found


def _is_comment(rest: str) -> bool:
    rest = rest.strip()
    return not rest or rest.startswith("#")


def _simple_value(text: str) -> tuple[object] | None:
    """A one-line string without escapes, or a decimal number, then perhaps a comment."""
    if text[:1] in ("'", '"'):
        quote = text[0]
        end = text.find(quote, 1)
        if end < 0 or (quote == '"' and "\\" in text[1:end]) or not _is_comment(text[end + 1 :]):
            return None
        return (text[1:end],)
    number = text.partition("#")[0].strip()
    if not number or not all(c in "0123456789.+-" for c in number):
        return None
    try:
        return (int(number),) if "." not in number else (float(number),)
    except ValueError:
        return None


def _toml(text: str) -> dict[str, object]:
    import tomllib

    return tomllib.loads(text)


def _config_files(explicit: str | None) -> list[str]:
    """The files ``load_config`` reads, in its order (config/load.py)."""
    chosen = explicit if explicit is not None else os.environ.get(_ENV_VAR) or None
    main = chosen or _DEFAULT_CONFIG
    if not os.path.exists(main):
        if chosen:
            raise OSError(f"{main} not found")
        return []
    files = [main]
    confd = os.path.join(os.path.dirname(main), "conf.d")
    if os.path.isdir(confd):
        names = sorted(n for n in os.listdir(confd) if n.endswith(".toml"))
        files.extend(p for n in names if os.path.isfile(p := os.path.join(confd, n)))
    return files


# --- the wire ------------------------------------------------------------------------


def frame(fields: Sequence[bytes]) -> bytes:
    body = b"\0".join([MAGIC, *fields])
    if len(body) > MAX_FRAME:
        raise WireError("frame too large")
    return b"%d:%s" % (len(body), body)


def unframe(data: bytes) -> tuple[list[bytes], int] | None:
    """The fields of the frame at the start of ``data`` and its length, or None if incomplete."""
    head, sep, rest = data.partition(b":")
    if not sep:
        if len(head) > 6 or (head and not head.isdigit()):
            raise WireError("bad frame length")
        return None
    if not head.isdigit() or len(head) > 6:
        raise WireError("bad frame length")
    size = int(head)
    if size > MAX_FRAME:
        raise WireError("frame too large")
    if len(rest) < size:
        return None
    fields = rest[:size].split(b"\0")
    if fields[0] != MAGIC:
        raise WireError("not an mda agent frame")
    return fields[1:], len(head) + 1 + size


def request_fields(verb: str, sender: str, recipients: Sequence[str]) -> list[bytes]:
    return [os.fsencode(verb), os.fsencode(sender), *(os.fsencode(r) for r in recipients)]


def reply_fields(code: int, deliver: bool, fallback: int, line: str) -> list[bytes]:
    return [
        b"%d" % code,
        b"deliver" if deliver else b"exit",
        b"%d" % fallback,
        line.encode("utf-8", "replace"),
    ]


def send_frame(sock: socket.socket, fields: Sequence[bytes], fd: int | None = None) -> None:
    """Send one frame (with ``fd`` attached to its first byte)."""
    data = memoryview(frame(fields))
    rights = [] if fd is None else [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", fd))]
    sent = sock.sendmsg([data], rights)
    while sent < len(data):
        data = data[sent:]
        sent = sock.send(data)


class Receiver:
    """Collects one frame from ``recvmsg`` results, and the descriptor that came with it."""

    def __init__(self) -> None:
        self.buffer = b""
        self.fd: int | None = None

    def feed(self, data: bytes, ancillary: list[tuple[int, int, bytes]]) -> list[bytes] | None:
        """The frame's fields once it is whole; WireError for anything else than one frame."""
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                count = len(payload) // _FD_SIZE
                for extra in struct.unpack(f"{count}i", payload[: count * _FD_SIZE]):
                    if self.fd is None:
                        self.fd = extra
                    else:
                        os.close(extra)
        if not data:
            raise WireError("connection closed before a whole frame")
        self.buffer += data
        done = unframe(self.buffer)
        if done is None:
            return None
        fields, used = done
        if used != len(self.buffer):
            raise WireError("data after the frame")
        return fields

    def take(self) -> int | None:
        fd, self.fd = self.fd, None
        return fd

    def close(self) -> None:
        fd = self.take()
        if fd is not None:
            os.close(fd)


#: ``recvmsg`` arguments: room for one descriptor (more are closed by the kernel)
RECV_ARGS = (_PIECE, socket.CMSG_SPACE(_FD_SIZE), socket.MSG_CMSG_CLOEXEC)


def receive_frame(sock: socket.socket) -> tuple[list[bytes], int | None]:
    """One frame and the descriptor that came with it (blocking, under the socket's timeout)."""
    receiver = Receiver()
    try:
        while True:
            data, ancillary, _, _ = sock.recvmsg(*RECV_ARGS)
            fields = receiver.feed(data, ancillary)
            if fields is not None:
                return fields, receiver.take()
    finally:
        receiver.close()


# --- the client ----------------------------------------------------------------------

#: the options of ``mda`` and ``pipe`` (cli/mda_cmd.py declares them for argparse)
_OPTIONS = {
    "-c": "config",
    "--config": "config",
    "--daemon-socket": "daemon_socket",
    "-f": "sender",
    "--sender": "sender",
    "-r": "recipient",
    "--recipient": "recipient",
}


def fast_path(verb: str, argv: Sequence[str]) -> int | None:
    """``mailwarden mda|pipe ARGV`` through the agent, or None to take the ordinary path.

    Only a plain, well-formed command line is parsed here (``--opt VALUE``,
    ``--opt=VALUE``, ``-x VALUE``, the MDA after ``--``); anything else
    (help, abbreviations, mistakes) is left to argparse in ``cli/mda_cmd.py``,
    which also runs the delivery in this process when the agent is not used.
    """
    parsed = _parse(verb, argv)
    if parsed is None:
        return None
    values, recipients, command = parsed
    if values["daemon_socket"] is not None:  # a daemon was named: scan in this process
        return None
    code, _ = attempt(verb, values["config"], values["sender"] or "", recipients, command)
    return code


def _parse(
    verb: str, argv: Sequence[str]
) -> tuple[dict[str, str | None], list[str], list[str]] | None:
    values: dict[str, str | None] = {"config": None, "daemon_socket": None, "sender": None}
    recipients: list[str] = []
    command: list[str] | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            command = list(argv[i + 1 :])
            break
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        key = _OPTIONS.get(name)
        if key is None:
            return None
        if not eq:
            i += 1
            if i >= len(argv):
                return None
            value = argv[i]
        if value.startswith("-"):  # argparse would read it as an option
            return None
        if key == "recipient":
            recipients.append(value)
        else:
            values[key] = value
        i += 1
    if (verb == "mda") != bool(command):
        return None
    return values, recipients, command or []


def attempt(
    verb: str,
    config: str | None,
    sender: str,
    recipients: Sequence[str],
    command: Sequence[str],
) -> tuple[int | None, str]:
    """The exit status of the delivery through the agent, or None to run it in this process
    (with the agent's socket when the agent did not answer there, for the log)."""
    route = agent_route(config)
    if route is None:
        return None, ""
    program = None
    if verb == "mda":
        try:
            program = find_program(command[0] if command else "")
        except LookupError:
            return None, ""  # the in-process path reports it with [mda] exit_usage
    sock = connect(route)
    if sock is None:
        if route.mode == "require":
            line = f"4.7.1 mailwarden {verb}: the mda agent is not answering on {route.socket}"
            return _say(route.tempfail, line), ""
        return None, route.socket
    return via_agent(sock, route, verb, sender, recipients, program, command), ""


def connect(route: Route) -> socket.socket | None:
    """A connection to the agent, or None when nothing answers on its socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(_CONNECT_TIMEOUT)
    try:
        sock.connect(route.socket)
    except OSError:
        sock.close()
        return None
    sock.settimeout(route.timeout)
    return sock


def spool_stdin(stream: int = 0) -> int:
    """A descriptor of an anonymous file holding everything on ``stream``, at offset 0."""
    fd = os.memfd_create("mailwarden-mda", os.MFD_CLOEXEC)
    size = 0
    try:
        while piece := os.read(stream, _PIECE):
            if size + len(piece) > SPILL and size <= SPILL:
                fd = _spill(fd, size)
            _write_all(fd, piece)
            size += len(piece)
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _spill(memfd: int, size: int) -> int:
    """Move what ``memfd`` holds to an unlinked file in $TMPDIR (a large message)."""
    folder = os.environ.get("TMPDIR") or "/tmp"  # noqa: S108 - only the default, as tempfile's
    try:
        fd = os.open(folder, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
    except OSError:
        import tempfile

        fd, name = tempfile.mkstemp(prefix="mailwarden-mda-")
        os.unlink(name)
    try:
        os.lseek(memfd, 0, os.SEEK_SET)
        copied = 0
        while copied < size:
            copied += os.sendfile(fd, memfd, None, size - copied) or _short_copy()
    except BaseException:
        os.close(fd)
        raise
    finally:
        os.close(memfd)
    return fd


def _short_copy() -> int:
    raise OSError("the spool file shrank while it was copied")


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def via_agent(
    sock: socket.socket,
    route: Route,
    verb: str,
    sender: str,
    recipients: Sequence[str],
    program: str | None,
    argv: Sequence[str],
) -> int:
    """Run one delivery through the agent on ``sock``; see the module documentation.

    For ``mda`` with a delivering policy this does not return: the process
    becomes ``program``.
    """
    name = f"mailwarden {verb}"
    try:
        message = spool_stdin()
    except OSError as exc:
        return _say(route.tempfail, f"4.3.0 {name}: cannot read standard input: {exc}")
    try:
        try:
            send_frame(sock, request_fields(verb, sender, recipients), message)
        finally:
            os.close(message)
        fields, copy = receive_frame(sock)
    except TimeoutError:
        return _say(route.tempfail, f"4.3.0 {name}: no answer from the mda agent in time")
    except (OSError, WireError) as exc:
        return _say(route.tempfail, f"4.3.0 {name}: the mda agent failed: {exc}")
    finally:
        sock.close()
    try:
        code, deliver, fallback, line = _reply(fields, copy)
    except WireError as exc:
        if copy is not None:
            os.close(copy)
        return _say(route.tempfail, f"4.3.0 {name}: malformed answer from the mda agent: {exc}")
    if line:
        print(line, file=sys.stderr, flush=True)
    if not deliver or copy is None:
        return code
    if verb == "pipe":
        return _copy_out(copy, code, fallback, name)
    return _exec(copy, program or "", argv, fallback, name)


def _reply(fields: list[bytes], copy: int | None) -> tuple[int, bool, int, str]:
    if len(fields) != 4 or not fields[0].isdigit() or not fields[2].isdigit():
        raise WireError("unexpected fields")
    code, fallback = int(fields[0]), int(fields[2])
    if code > 255 or not 0 < fallback < 256 or fields[1] not in (b"deliver", b"exit"):
        raise WireError("unexpected values")
    deliver = fields[1] == b"deliver"
    if deliver and copy is None:
        raise WireError("no message to deliver came with the answer")
    line = fields[3].decode("utf-8", "replace")
    if "\n" in line or "\r" in line:
        raise WireError("a reason of more than one line")
    return code, deliver, fallback, line


def _copy_out(copy: int, code: int, fallback: int, name: str) -> int:
    try:
        with os.fdopen(copy, "rb") as source:
            out = sys.stdout.buffer
            while piece := source.read(_PIECE):
                out.write(piece)
            out.flush()
    except OSError as exc:
        return _say(fallback, f"4.3.0 {name}: cannot write: {exc}")
    return code


def _exec(copy: int, program: str, argv: Sequence[str], fallback: int, name: str) -> int:
    try:
        become(program, argv, copy)
    except OSError as exc:
        return _say(fallback, f"4.3.0 {name}: cannot run the original MDA {program}: {exc}")


def become(program: str, argv: Sequence[str], stdin: int) -> NoReturn:
    """Replace this process with ``program`` reading descriptor ``stdin`` (OSError if not)."""
    os.dup2(stdin, 0)
    os.close(stdin)
    sys.stdout.flush()
    sys.stderr.flush()
    # no shell: the MTA's configuration already split the command line
    os.execv(program, list(argv))  # noqa: S606


def _say(code: int, line: str) -> int:
    print(" ".join(line.split()), file=sys.stderr, flush=True)
    return code


def find_program(name: str) -> str:
    """The executable ``name`` names: a path, or a name looked up in $PATH (LookupError)."""
    if not name:
        raise LookupError("no original MDA given after --")
    if "/" in name:
        candidates = [name]
    else:
        path = os.environ.get("PATH") or os.defpath
        candidates = [os.path.join(d or ".", name) for d in path.split(os.pathsep)]
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    where = "" if "/" in name else " in $PATH"
    raise LookupError(f"original MDA {name!r} not found{where} or not executable")
