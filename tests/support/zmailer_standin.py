"""A stand-in for ZMailer's smtpserver side of the content filter, for tests.

ZMailer is not packaged by Debian.  This follows smtpserver(8zm)'s
CONTENTFILTER INTERFACE section and ``PARAM contentfilter``:

* the filter is started once, without arguments, in $POSTOFFICE, with its
  standard input on one pipe and both its standard output and standard
  error on another;
* for each message, smtpserver writes the message file (zmailer(3zm)'s
  envelope lines, ``env-end``, the message) under ``public/``, waits for
  the filter's ``#hungry`` line, writes the file's path (relative to
  $POSTOFFICE) and a newline, and reads answer lines: ``#`` lines are
  debugging and skipped; a line starting with a signed integer and a space
  is the answer; any other line is logged and the channel to the filter is
  closed (then, without a proper answer, the message is frozen: ``1``);
* the answer decides the file's fate as smtpserver does: negative, the file
  is dropped; zero, it moves to ``router/`` (queued); positive, it moves to
  ``freezer/``.  The reply to the SMTP client is the code and enhanced
  status at the start of the text, else 550 5.7.1 for a negative answer and
  250 2.6.0 otherwise.

::

    po = Postoffice.create(tmp / "postoffice")
    with po.start([...mailwarden zmailer-filter...]) as server:
        outcome = server.submit(message, "a@x", ["b@y"])
        outcome.result, outcome.reply      # 0, "250 2.6.0 Ok"
    po.queued()                            # message files in router/

SECURITY: test-only; runs nothing but the given program, stopped by its PID.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_ANSWER = re.compile(rb"^(-?[0-9]+) (.*)$")
_REPLY = re.compile(r"^([2-5][0-9][0-9]) ([2-5]\.[0-9]{1,3}\.[0-9]{1,3} )?(.*)$")


@dataclass(frozen=True)
class Outcome:
    result: int
    reply: str
    #: lines the filter wrote that were neither the answer nor comments
    junk: tuple[bytes, ...] = ()


def message_file(message: bytes, sender: str, recipients: Sequence[str]) -> bytes:
    """What smtpserver writes before the filter sees the file (zmailer(3zm)).

    smtpserver stores lines with LF ends (its DATA reader drops the CR)."""
    head = [
        "rcvdfrom client.example@[192.0.2.7] (client.example [192.0.2.7])",
        "with ESMTP",
        f"from <{sender}>",
    ]
    for rcpt in recipients:
        head += [f"todsn ORCPT=rfc822;{rcpt}", f"to <{rcpt}>"]
    return ("\n".join(head) + "\nenv-end\n").encode() + message.replace(b"\r\n", b"\n")


@dataclass
class Postoffice:
    root: Path
    counter: int = 0

    @classmethod
    def create(cls, root: Path) -> Postoffice:
        for sub in ("public", "router", "freezer"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        return cls(root)

    def write(self, data: bytes) -> str:
        self.counter += 1
        relative = f"public/{os.getpid()}-{self.counter}"
        (self.root / relative).write_bytes(data)
        return relative

    def queued(self) -> list[bytes]:
        return [p.read_bytes() for p in sorted((self.root / "router").iterdir())]

    def frozen(self) -> list[bytes]:
        return [p.read_bytes() for p in sorted((self.root / "freezer").iterdir())]

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in (self.root / "public").iterdir())

    @contextlib.contextmanager
    def start(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None
    ) -> Iterator[Server]:
        read_end, write_end = os.pipe()
        proc = subprocess.Popen(  # the test's own command line
            list(argv),
            stdin=subprocess.PIPE,
            stdout=write_end,
            stderr=write_end,  # smtpserver gives both to the same pipe
            cwd=self.root,
            env=dict(os.environ if env is None else env),
        )
        os.close(write_end)
        server = Server(self, proc, read_end)
        try:
            yield server
        finally:
            server.close()


@dataclass
class Server:
    postoffice: Postoffice
    proc: subprocess.Popen[bytes]
    fd: int
    buffer: bytes = b""
    closed_channel: bool = False
    log: list[bytes] = field(default_factory=list)

    def readline(self, timeout: float = 120) -> bytes:
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if not ready:
                raise TimeoutError("the filter said nothing")
            piece = os.read(self.fd, 65536)
            if not piece:
                line, self.buffer = self.buffer, b""
                return line
            self.buffer += piece
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"

    def request(self, path: str) -> Outcome:
        """Send one path after ``#hungry`` and read the answer as smtpserver does."""
        line = self.readline()
        if line != b"#hungry\n":
            raise AssertionError(f"expected #hungry, got {line!r}")
        assert self.proc.stdin is not None
        self.proc.stdin.write(path.encode() + b"\n")
        self.proc.stdin.flush()
        junk: list[bytes] = []
        while True:
            line = self.readline()
            if not line:
                return Outcome(1, "250 2.6.0 message accepted; into freezer area", tuple(junk))
            text = line.rstrip(b"\n")
            if text.startswith(b"#"):
                continue
            match = _ANSWER.match(text)
            if match:
                return Outcome(int(match.group(1)), _reply(int(match.group(1)), match.group(2)))
            # logged, and smtpserver stops talking to the filter
            junk.append(text)
            self.log.append(text)
            if not self.closed_channel:
                self.proc.stdin.close()
                self.closed_channel = True

    def submit(self, message: bytes, sender: str, recipients: Sequence[str]) -> Outcome:
        """Write the message file, ask the filter, and dispose of the file by the answer."""
        relative = self.postoffice.write(message_file(message, sender, recipients))
        outcome = self.request(relative)
        self.dispose(relative, outcome.result)
        return outcome

    def dispose(self, relative: str, result: int) -> None:
        path = self.postoffice.root / relative
        if result < 0:
            path.unlink()
        else:
            where = "router" if result == 0 else "freezer"
            path.rename(self.postoffice.root / where / path.name)

    def close(self) -> int:
        """Close the filter's input (its signal to exit) and wait for it."""
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None and not self.proc.stdin.closed:
                self.proc.stdin.close()
        try:
            code = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        with contextlib.suppress(OSError):
            os.close(self.fd)
        return code


def _reply(result: int, text: bytes) -> str:
    decoded = text.decode("ascii", "replace").strip()
    match = _REPLY.match(decoded)
    if match:
        status = (match.group(2) or "").strip()
        return " ".join(x for x in (match.group(1), status, match.group(3)) if x)
    if result < 0:
        return f"550 5.7.1 {decoded}".strip()
    return f"250 2.6.0 {decoded}".strip()
