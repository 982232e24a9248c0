"""A stand-in for qmail's queue side, written from qmail-queue(8), for tests.

qmail is not packaged by Debian, so the tests run ``mailwarden qmail-queue``
between two stand-ins that follow qmail's documented interface:

* :func:`qmail_queue_main` is the real qmail-queue: it reads the message
  from descriptor 0 to its end, then the envelope from descriptor 1
  (``F`` sender NUL, ``T`` recipient NUL ..., NUL), and stores both in a
  queue folder (one ``N.mess`` and one ``N.env`` per message, renamed into
  place) before exiting 0; a malformed envelope exits 91 and a read error
  54, as the manual page says.  ``write_qmail_queue(path, queue)`` writes
  it as an executable.
* :func:`submit` is qmail-smtpd's side (qmail_open ... qmail_close): it
  starts the program with a pipe on descriptor 0 and one on descriptor 1,
  writes the message, closes that pipe, writes the envelope, closes it,
  waits, and turns the exit status into the reply qmail-smtpd gives
  (:func:`smtpd_reply`: 250, 451 or 554 with qmail's texts).

::

    write_qmail_queue(bin_dir / "qmail-queue", queue_dir)
    result = submit([...mailwarden qmail-queue...], message, "a@x", ["b@y"])
    result.status, result.reply          # 0, "250 ok"
    queued(queue_dir)                    # [(message bytes, envelope bytes)]

Usage as a program: ``python qmail_standin.py queue QUEUE_DIR``.

SECURITY: test-only; runs nothing but the given program.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: What qmail-smtpd says for each qmail-queue exit status (qmail 1.03 qmail_close).
_REPLIES = {
    0: "250 ok",
    11: "554 envelope address too long for qq (#5.1.3)",
    31: "554 mail server permanently rejected message (#5.3.0)",
    51: "451 qq out of memory (#4.3.0)",
    52: "451 qq timeout (#4.3.0)",
    53: "451 qq write error or disk full (#4.3.0)",
    54: "451 qq read error (#4.3.0)",
    55: "451 qq unable to read configuration (#4.3.0)",
    56: "451 qq trouble making network connection (#4.3.0)",
    61: "451 qq trouble in home directory (#4.3.0)",
    62: "451 qq trouble creating files in queue (#4.3.0)",
    71: "451 mail server temporarily rejected message (#4.3.0)",
    72: "451 connection to mail server timed out (#4.4.1)",
    73: "451 connection to mail server rejected (#4.4.1)",
    74: "451 communication with mail server failed (#4.4.2)",
    81: "451 qq internal bug (#4.3.0)",
    91: "451 qq internal bug (#4.3.0)",
}


def smtpd_reply(status: int) -> str:
    """qmail-smtpd's reply for a qmail-queue exit status (negative: killed by a signal)."""
    if status < 0:
        return "451 qq crashed (#4.3.0)"
    if status in (63, 64, 65, 66):
        status = 62
    if status in _REPLIES:
        return _REPLIES[status]
    if 11 <= status <= 40:
        return "554 qq permanent problem (#5.3.0)"
    return "451 qq temporary problem (#4.3.0)"


@dataclass(frozen=True)
class Submission:
    status: int
    reply: str
    stderr: str


def encode(sender: str, recipients: Sequence[str]) -> bytes:
    """The envelope qmail-smtpd writes (qmail_from, qmail_to, the final NUL)."""
    out = b"F" + sender.encode() + b"\0"
    for rcpt in recipients:
        out += b"T" + rcpt.encode() + b"\0"
    return out + b"\0"


def submit(
    argv: Sequence[str],
    message: bytes,
    sender: str = "",
    recipients: Sequence[str] = (),
    *,
    envelope: bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> Submission:
    """Run ``argv`` as qmail-smtpd runs qmail-queue; see the module documentation."""
    data = encode(sender, recipients) if envelope is None else envelope
    m_read, m_write = os.pipe()
    e_read, e_write = os.pipe()
    proc = subprocess.Popen(
        list(argv),
        stdin=m_read,
        stdout=e_read,
        stderr=subprocess.PIPE,
        env=dict(os.environ if env is None else env),
    )
    os.close(m_read)
    os.close(e_read)
    # qmail_put then qmail_from: the message, its descriptor closed, then the envelope
    for fd, payload in ((m_write, message), (e_write, data)):
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]
        except BrokenPipeError:
            pass  # qmail sets flagerr and still waits for the status
        finally:
            os.close(fd)
    _, err = proc.communicate(timeout=timeout)
    status = proc.returncode
    return Submission(status, smtpd_reply(status), err.decode(errors="replace"))


def queued(queue: Path) -> list[tuple[bytes, bytes]]:
    """(message, envelope) of each message the stand-in queued, oldest first."""
    names = sorted(queue.glob("*.env"), key=lambda p: int(p.stem))
    return [(p.with_suffix(".mess").read_bytes(), p.read_bytes()) for p in names]


def write_qmail_queue(path: Path, queue: Path) -> Path:
    """An executable stand-in qmail-queue storing into ``queue``."""
    queue.mkdir(parents=True, exist_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"#!/bin/sh\nexec '{sys.executable}' '{Path(__file__).resolve()}' queue '{queue}'\n"
    )
    path.chmod(0o755)
    return path


def _read_all(fd: int) -> bytes:
    chunks = []
    while piece := os.read(fd, 65536):
        chunks.append(piece)
    return b"".join(chunks)


def _read_envelope(fd: int) -> bytes | None:
    """The envelope read as qmail-queue reads it, or None if malformed or cut short."""
    data = bytearray()

    def byte() -> int | None:
        got = os.read(fd, 1)
        if not got:
            return None
        data.extend(got)
        return got[0]

    if byte() != ord("F"):
        return None
    while (c := byte()) != 0:
        if c is None:
            return None
    while True:
        c = byte()
        if c == 0:
            return bytes(data)
        if c != ord("T"):
            return None
        while (c := byte()) != 0:
            if c is None:
                return None


def qmail_queue_main(queue: Path) -> int:
    forced = os.environ.get("STANDIN_QMAIL_QUEUE_EXIT")
    try:
        message = _read_all(0)
        envelope = _read_envelope(1)
    except OSError:
        return 54
    if envelope is None:
        return 91
    if forced:
        return int(forced)
    number = len(list(queue.glob("*.env"))) + 1
    for suffix, payload in ((".mess", message), (".env", envelope)):
        tmp = queue / f".{number}{suffix}"
        tmp.write_bytes(payload)
        tmp.rename(queue / f"{number}{suffix}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "queue":
        sys.exit(qmail_queue_main(Path(sys.argv[2])))
    sys.exit(f"usage: {sys.argv[0]} queue QUEUE_DIR")
