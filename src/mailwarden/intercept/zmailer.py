"""``mailwarden zmailer-filter``: the content filter program of ZMailer's smtpserver.

smtpserver(8zm) starts the program named by ``PARAM contentfilter`` in
smtpserver.conf once, without arguments, in $POSTOFFICE, with its standard
input, output and error on pipes, and keeps it running.  The dialogue,
repeated until the program reads end of file::

    filter:      #hungry
    smtpserver:  public/1234567          (the received message file)
    filter:      0 250 2.6.0 Clean       (RESULT and the reply text)

``RESULT`` is a signed integer: negative discards the message file and gives
the SMTP client the reply in the text, 0 accepts the message into the
queue, positive puts it into ZMailer's freezer.  The message file holds
ZMailer's envelope lines (``from <a>``, ``to <b>``, ``rcvdfrom ...``) up to
``env-end``, then the message.  Use::

    serve(config, settings, sys.stdin.buffer, sys.stdout.buffer)

The shared pipeline runs once per message in before-queue mode (the SMTP
client is waiting for its reply to DATA):

===================  ===========================================================
outcome              answer
===================  ===========================================================
accept, tag          ``0 250 2.6.0 ...``; the file is first replaced by the copy
                     with our headers (written beside it, renamed over it)
quarantine, discard  ``-1 250 2.7.0 ...``: the client is told it was accepted;
                     the file is dropped (the quarantine holds the copy)
reject               ``-1 550 5.7.1 ...`` (the policy's reply)
defer, error         ``-1 451 4.7.1 ...`` (the policy's reply): the client retries
===================  ===========================================================

A request naming a missing or unreadable file, a file without ``env-end``
or without a recipient, a copy that cannot be written, and any internal
error are answered ``-1 451 4.3.0 ...``: the SMTP client keeps the message
and tries again, so nothing is lost or half-queued.  One bad request never
ends the program.

SECURITY: runs as smtpserver's user (daemon) in the spool.  The path comes
from smtpserver (trusted) but only a regular file is read; the message and
envelope are untrusted and used for policy lookups and logs only.  Standard
error is the same pipe as the answers, so nothing but answer lines and
``#``-comments is ever written to it (logs go to syslog).  Reply texts are
cut to one line of printable ASCII.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mailwarden.config import Config
from mailwarden.daemon.client import AsyncDaemonClient
from mailwarden.errors import ConfigError, MailwardenError
from mailwarden.intercept.pipeline import Answer, Pipeline, Scanner
from mailwarden.message import Envelope, Message, Point
from mailwarden.policy import DELIVERING, Mode, SmtpReply

log = logging.getLogger("mailwarden.intercept.zmailer")

HUNGRY = b"#hungry\n"
_TEMPFAIL = SmtpReply(451, "4.3.0", "Message not scanned; try again later")
_END = b"env-end\n"
#: longest line of ZMailer's envelope we accept before env-end
_MAX_ENVELOPE = 4 * 1024 * 1024
_IP = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]+")


class RequestError(MailwardenError):
    """The request cannot be served: the file is missing, unreadable or malformed."""


@dataclass(frozen=True, slots=True)
class ZmailerSettings:
    daemon_socket: str
    postoffice: str
    connect_timeout: float
    scan_timeout: float

    @classmethod
    def from_config(cls, config: Config, *, daemon_socket: str | None = None) -> ZmailerSettings:
        values = config["zmailer"]
        sock = daemon_socket or values["daemon_socket"] or config["daemon"]["socket"]
        if not sock:
            raise ConfigError(
                "zmailer-filter needs the daemon's unix socket",
                key="--daemon-socket / zmailer.daemon_socket / daemon.socket",
            )
        return cls(
            daemon_socket=str(sock),
            postoffice=str(values["postoffice"]),
            connect_timeout=float(values["connect_timeout"]),
            scan_timeout=float(values["scan_timeout"]),
        )


@dataclass(frozen=True, slots=True)
class MessageFile:
    """A ZMailer message file split into its envelope and the message."""

    envelope: Envelope
    head: bytes  # the envelope lines, env-end included
    message: bytes


def parse_message_file(data: bytes, *, queue_id: str | None = None) -> MessageFile:
    """Split ``data`` at ``env-end``; see the module documentation."""
    if data.startswith(_END):
        end = 0
    else:
        found = data.find(b"\n" + _END, 0, _MAX_ENVELOPE)
        if found < 0:
            raise RequestError("no env-end line in the message file")
        end = found + 1
    head = data[: end + len(_END)]
    sender: str | None = None
    recipients: list[str] = []
    client: str | None = None
    helo: str | None = None
    for raw in head.split(b"\n")[:-2]:
        line = raw.decode("utf-8", "surrogateescape")
        word, _, rest = line.partition(" ")
        if word == "from":
            sender = _address(rest)
        elif word == "channel" and rest.strip() == "error":
            sender = ""  # ZMailer's own bounce: no return address
        elif word == "to":
            recipients.append(_address(rest))
        elif word == "rcvdfrom":
            helo = rest.split("@", 1)[0] or None
            ip = _IP.search(rest)
            client = ip.group(1) if ip else None
    if not recipients:
        raise RequestError("the message file names no recipient")
    envelope = Envelope(
        sender=sender or "",
        recipients=tuple(recipients),
        client_address=client,
        helo=helo,
        queue_id=queue_id,
        point=Point.MTA,
        agent="zmailer-filter",
    )
    return MessageFile(envelope, head, data[len(head) :])


def answer_line(result: int, reply: SmtpReply) -> bytes:
    """One answer line: ``RESULT CODE STATUS TEXT``."""
    text = _UNPRINTABLE.sub(" ", reply.text).strip()[:400] or "-"
    return f"{result} {reply.code} {reply.status} {text}\n".encode("ascii")


class Filter:
    """Serves one smtpserver: see the module documentation."""

    def __init__(self, pipeline: Pipeline, settings: ZmailerSettings) -> None:
        self.pipeline = pipeline
        self.settings = settings

    def resolve(self, request: str) -> Path:
        path = Path(request)
        if not path.is_absolute() and self.settings.postoffice:
            path = Path(self.settings.postoffice) / path
        return path

    async def handle(self, request: str) -> bytes:
        """The answer line for one request; never raises."""
        try:
            return await self._handle(request)
        except RequestError as exc:
            log.error("request %r: %s", request, exc)
        except Exception:  # the boundary: the client retries, the filter keeps serving
            log.exception("request %r: internal error", request)
        return answer_line(-1, _TEMPFAIL)

    async def _handle(self, request: str) -> bytes:
        if not request or "\0" in request:
            raise RequestError("empty or malformed request line")
        path = self.resolve(request)
        data = _read_regular(path)
        parsed = parse_message_file(data, queue_id=path.name)
        done = await self.pipeline.process(
            Message(parsed.message, parsed.envelope),
            mode=Mode.BEFORE_QUEUE,
            answer=Answer.ONE_COPY,
        )
        whole = done.action.whole
        if whole.kind in DELIVERING and done.deliveries:
            copy = done.deliveries[0][0]
            if copy != parsed.message:
                _replace(path, parsed.head + copy)
            return answer_line(0, whole.reply)
        # quarantine and discard (2xx), reject (5xx), defer (4xx): the file is
        # dropped and the reply's class tells the client what happened
        return answer_line(-1, whole.reply)


async def serve(
    config: Config,
    settings: ZmailerSettings,
    stdin: BinaryIO,
    stdout: BinaryIO,
    *,
    scanner: Scanner | None = None,
    host: str = "",
) -> int:
    """Answer requests until smtpserver closes our standard input; returns the exit status."""
    from mailwarden.intercept.mda.judge import header_host

    client = None
    if scanner is None:
        client = AsyncDaemonClient(
            settings.daemon_socket,
            timeout=settings.scan_timeout,
            connect_timeout=settings.connect_timeout,
            reuse=False,
        )
        scanner = client
    pipeline = Pipeline.from_config(config, scanner, host=host or header_host(config))
    agent = Filter(pipeline, settings)
    try:
        while True:
            stdout.write(HUNGRY)
            stdout.flush()
            line = await asyncio.to_thread(stdin.readline)
            if not line:
                return 0
            request = line.rstrip(b"\r\n").decode("utf-8", "surrogateescape")
            stdout.write(await agent.handle(request))
            stdout.flush()
    except BrokenPipeError:
        return 0  # smtpserver went away; it keeps whatever it did not hear about
    finally:
        if client is not None:
            await client.close()


def _address(text: str) -> str:
    text = text.strip()
    if text.startswith("<") and ">" in text:
        return text[1 : text.index(">")]
    return text.split(" ", 1)[0] if text else ""


def _read_regular(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise RequestError(f"cannot open {path}: {exc.strerror or exc}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RequestError(f"{path} is not a regular file")
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise RequestError(f"cannot read {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


def _replace(path: Path, data: bytes) -> None:
    """Put ``data`` at ``path`` in one rename, keeping the file's mode and owner."""
    try:
        info = path.stat()
        fd, tmp = tempfile.mkstemp(prefix=".mailwarden-", dir=path.parent)
    except OSError as exc:
        raise RequestError(f"cannot write the scanned copy beside {path}: {exc}") from exc
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, stat.S_IMODE(info.st_mode))
        if os.geteuid() == 0:
            os.chown(tmp, info.st_uid, info.st_gid)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise RequestError(f"cannot write the scanned copy of {path}: {exc}") from exc


def refuse_all(stdin: BinaryIO, stdout: BinaryIO, reason: str) -> int:
    """Keep the dialogue going, answering every request with a temporary failure.

    Used when the configuration cannot be loaded: exiting would leave
    smtpserver without its filter, so every message is deferred instead and
    the reason is logged once.
    """
    log.error("zmailer-filter cannot start, deferring every message: %s", reason)
    try:
        while True:
            stdout.write(HUNGRY)
            stdout.flush()
            if not stdin.readline():
                return 0
            stdout.write(answer_line(-1, _TEMPFAIL))
            stdout.flush()
    except BrokenPipeError:
        return 0
