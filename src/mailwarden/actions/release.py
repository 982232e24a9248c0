"""Release: re-inject a quarantined message, marked so it is not quarantined again.

Usage::

    secret = load_secret(Path(config["release"]["secret_file"]), create=True)
    result = asyncio.run(release(store, qid, secret=secret,
                                 **release_options(config["release"])))

    # in an agent, before deciding:
    mark = check_mark(message.raw, secret, now=time.time(), max_age=...)
    action = decide(verdict, message, policy, released=mark is not None)

The mark is one header put first in the re-injected message::

    X-Mailwarden-Release: v=1; id=<quarantine id>; t=<unix time>; mac=<hex>

``mac`` is HMAC-SHA256, under a per-installation secret, of the version, the
id, the time and the SHA-256 of everything that follows the mark (line ends
made uniform, so CRLF on the wire and LF on disk agree).  MTAs only prepend
trace headers above it, so the digest survives the trip; a message changed
after release, or a mark copied onto another message, does not verify and is
scanned and decided like any other.

SECURITY: a forged or altered mark gives nothing: without the secret no one
can make a valid one, and it is bound to the content it was made for.  The
secret file must be 0600 (a readable one is refused); it is created that way
on first use.  Replaying a released message unchanged only re-delivers what
an administrator approved, and only until ``max_age``.  Release talks SMTP to
the configured downstream only, or runs the configured sendmail program with
an argument vector (never a shell) as the invoking user, and needs no
privileges beyond reading the store and the secret.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import os
import re
import secrets
import stat
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailwarden.actions.headers import RELEASE_HEADER, rewrite
from mailwarden.errors import MailwardenError
from mailwarden.store import QuarantineId, QuarantineStore, ScanEvent, parse_id

#: Clock difference between gateway nodes tolerated for marks "from the future".
CLOCK_SKEW = 300

_MARK = re.compile(
    rb"^x-mailwarden-release[ \t]*:[ \t]*v=1;[ \t]*id=([0-9a-f]{32});[ \t]*t=(\d{1,12});"
    rb"[ \t]*mac=([0-9a-f]{64})[ \t]*\r?\n",
    re.IGNORECASE | re.MULTILINE,
)


class ReleaseError(MailwardenError):
    """The message could not be released (secret, SMTP refusal, network)."""


@dataclass(frozen=True, slots=True)
class ReleaseMark:
    qid: QuarantineId
    time: int


@dataclass(frozen=True, slots=True)
class ReleaseResult:
    qid: QuarantineId
    accepted: tuple[str, ...]
    refused: dict[str, str]


def load_secret(path: Path, *, create: bool = False) -> bytes:
    """Read the release secret; with ``create``, make a new 0600 one if it is missing."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        if not create:
            raise ReleaseError(f"release secret {path} does not exist") from None
        return _create_secret(path)
    except OSError as exc:
        raise ReleaseError(f"cannot read release secret {path}: {exc}") from exc
    with os.fdopen(fd, "rb") as src:
        if stat.S_IMODE(os.fstat(src.fileno()).st_mode) & 0o077:
            raise ReleaseError(f"release secret {path} is readable by others; chmod 600 {path}")
        secret = src.read().strip()
    if len(secret) < 32:
        raise ReleaseError(f"release secret {path} is too short (at least 32 characters)")
    return secret


def _create_secret(path: Path) -> bytes:
    secret = secrets.token_hex(32).encode("ascii")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        return load_secret(path)
    except OSError as exc:
        raise ReleaseError(f"cannot create release secret {path}: {exc}") from exc
    with os.fdopen(fd, "wb") as out:
        out.write(secret + b"\n")
    return secret


def add_mark(raw: bytes, qid: QuarantineId, secret: bytes, now: float) -> bytes:
    """``raw`` with any old mark (and an mbox ``From `` line) removed and a fresh mark first."""
    if raw.startswith(b"From "):
        raw = raw[raw.find(b"\n") + 1 :] if b"\n" in raw else b""
    body = rewrite(raw, strip=(RELEASE_HEADER,))
    stamp = int(now)
    mac = _mac(secret, qid, stamp, body)
    value = f"v=1; id={qid}; t={stamp}; mac={mac}"
    return rewrite(body, add=[(RELEASE_HEADER, value)])


def check_mark(raw: bytes, secret: bytes, *, now: float, max_age: float) -> ReleaseMark | None:
    """The verified release mark of ``raw``, or None (absent, forged, altered or expired)."""
    for m in _MARK.finditer(raw[: _header_end(raw)]):
        qid, stamp, mac = m.group(1).decode(), int(m.group(2)), m.group(3).decode()
        expected = _mac(secret, QuarantineId(qid), stamp, raw[m.end() :])
        if not hmac.compare_digest(expected, mac.lower()):
            continue
        if not (now - max_age <= stamp <= now + CLOCK_SKEW):
            continue
        return ReleaseMark(QuarantineId(qid), stamp)
    return None


def _mac(secret: bytes, qid: QuarantineId, stamp: int, following: bytes) -> str:
    digest = hashlib.sha256(following.replace(b"\r\n", b"\n")).hexdigest()
    data = f"mailwarden-release\0v1\0{qid}\0{stamp}\0{digest}".encode("ascii")
    return hmac.new(secret, data, hashlib.sha256).hexdigest()


def _header_end(raw: bytes) -> int:
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    return min(ends) + 1 if ends else len(raw)


async def release(
    store: QuarantineStore,
    qid: str,
    *,
    secret: bytes,
    host: str = "127.0.0.1",
    port: int = 25,
    timeout: float = 60.0,
    recipients: Sequence[str] | None = None,
    now: float | None = None,
    method: str = "smtp",
    sendmail_path: str = "/usr/sbin/sendmail",
) -> ReleaseResult:
    """Re-inject a quarantined message and mark it released.

    ``method`` is ``smtp`` (to ``host:port``) or ``sendmail`` (the MTA's
    ``sendmail_path`` program); :func:`release_options` reads all of this
    from the ``[release]`` section.  ``recipients`` defaults to the original
    envelope's.  Raises :class:`ReleaseError` when no recipient was accepted;
    the entry is marked released (with the accepted recipients) otherwise.
    """
    qid = parse_id(qid)
    entry = store.get(qid)
    rcpts = tuple(recipients) if recipients else entry.envelope.recipients
    if not rcpts:
        raise ReleaseError(f"{qid} has no recipients; name them with --to")
    stamp = time.time() if now is None else now
    marked = add_mark(store.read(qid), qid, secret, stamp)
    sender = entry.envelope.sender
    if method == "sendmail":
        await _by_sendmail(sendmail_path, sender, rcpts, marked, timeout, qid)
        refused: dict[str, str] = {}
    else:
        refused = await _by_smtp(host, port, sender, rcpts, marked, timeout, qid)
    accepted = tuple(r for r in rcpts if r not in refused)
    store.mark_released(qid, accepted)
    envelope = dataclasses.replace(entry.envelope, recipients=accepted)
    store.record_event(
        ScanEvent(
            stamp,
            envelope,
            entry.verdict.status.value,
            "release",
            entry.verdict.name,
            entry.size,
            qid,
        )
    )
    return ReleaseResult(qid, accepted, refused)


def release_options(section: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :func:`release` that the ``[release]`` section sets."""
    return {
        "method": section["method"],
        "host": section["host"],
        "port": section["port"],
        "timeout": section["timeout"],
        "sendmail_path": section["sendmail_path"],
    }


async def _by_smtp(
    host: str,
    port: int,
    sender: str,
    rcpts: tuple[str, ...],
    marked: bytes,
    timeout: float,
    qid: QuarantineId,
) -> dict[str, str]:
    """Send by SMTP; return the refused recipients (raise when all were refused)."""
    import aiosmtplib

    try:
        # the client object, not aiosmtplib.send(), because send() refuses the
        # null sender that bounces and notifications carry
        client = aiosmtplib.SMTP(hostname=host, port=port, timeout=timeout, start_tls=False)
        async with client:
            errors, _ = await client.sendmail(sender, list(rcpts), marked)
    except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError) as exc:
        raise ReleaseError(f"cannot reach {host}:{port} to release {qid}: {exc}") from exc
    except aiosmtplib.SMTPException as exc:
        raise ReleaseError(f"{host}:{port} refused the release of {qid}: {exc}") from exc
    except OSError as exc:
        raise ReleaseError(f"cannot reach {host}:{port} to release {qid}: {exc}") from exc
    refused = {r: f"{resp.code} {resp.message}" for r, resp in errors.items()}
    if len(refused) == len(rcpts):
        raise ReleaseError(f"{host}:{port} refused every recipient of {qid}: {refused}")
    return refused


async def _by_sendmail(
    program: str,
    sender: str,
    rcpts: tuple[str, ...],
    marked: bytes,
    timeout: float,
    qid: QuarantineId,
) -> None:
    """Hand the message to the MTA's sendmail program, without a shell.

    ``-G`` says it is a relayed message, not a new submission (no header
    fixing); ``-i`` keeps a line with a lone dot in the body; ``--`` ends the
    options, so no recipient address is ever read as one.  The null sender is
    passed as ``<>``, which Postfix, Sendmail and Exim all understand.
    """
    argv = [program, "-G", "-i", "-f", sender or "<>", "--", *rcpts]
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as exc:
        raise ReleaseError(f"cannot run {program} to release {qid}: {exc}") from exc
    try:
        output, _ = await asyncio.wait_for(proc.communicate(marked), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ReleaseError(f"{program} took over {timeout:g}s to release {qid}; killed") from None
    if proc.returncode != 0:
        said = output.decode("utf-8", "replace").strip()[:500] or "no message"
        raise ReleaseError(
            f"{program} exited with status {proc.returncode} releasing {qid}: {said}"
        )
