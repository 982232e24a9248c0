"""The ``mda`` and ``pipe`` agents: one message in, one exit status out.

::

    request = Request(sender="a@example.org", recipients=("b@example.org",),
                      command=("/usr/bin/procmail", "-a", ""))
    code = run_mda(request, sys.stdin.buffer)        # exec()s the MDA when it delivers
    code = run_pipe(request, sys.stdin.buffer, sys.stdout.buffer)

Both read the message (:mod:`.intake`), run the shared pipeline
(:mod:`.judge`) and translate the outcome:

=============  =============================  ===============================
outcome        ``mda``                        ``pipe``
=============  =============================  ===============================
accept, tag    the original MDA runs with     the message on stdout, exit 0
               the copy; its exit status
quarantine     ``exit_quarantine`` (0)        ``pipe_exit_quarantine`` (1)
discard        ``exit_discard`` (0)           ``pipe_exit_discard`` (2)
reject         ``exit_reject`` (77) + reason  same
defer, error   ``exit_tempfail`` (75)         same
=============  =============================  ===============================

Every failure on the way (configuration, empty input, daemon, store, an MDA
that cannot be run, a bug) ends in ``exit_tempfail`` or ``exit_usage``
(both 75 by default) with a one-line reason on stderr, so the MTA keeps the
mail: nothing exits 0 without the message delivered, quarantined or
discarded by the policy.

SECURITY: runs with the identity the MTA chose (often the recipient's).
It reads the configuration, connects to the daemon's socket and writes the
quarantine store (the store must be writable for that identity; see
docs/mda.md).  The message and envelope are untrusted and never reach a
command line.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import BinaryIO

from mailwarden.config import Config, load_config
from mailwarden.errors import MailwardenError
from mailwarden.intercept.mda.handoff import HandoffError, exec_mda, find_program
from mailwarden.intercept.mda.intake import Intake, IntakeError, read_message
from mailwarden.intercept.mda.judge import Decision, judge
from mailwarden.intercept.mda.report import reason_line, say
from mailwarden.intercept.mda.settings import ExitCodes, MdaSettings
from mailwarden.intercept.pipeline import Scanner
from mailwarden.message import Envelope, Message, Point
from mailwarden.policy import DELIVERING, ActionKind

log = logging.getLogger("mailwarden.intercept.mda")


@dataclass(frozen=True, slots=True)
class Request:
    """What the command line says: the envelope, where things are, the original MDA."""

    sender: str = ""
    recipients: tuple[str, ...] = ()
    config: str | None = None
    daemon_socket: str | None = None
    command: tuple[str, ...] = ()


class _Stop(Exception):
    """Leave with this exit status (the reason is already on stderr)."""

    def __init__(self, code: int) -> None:
        self.code = code


def run_mda(request: Request, stdin: BinaryIO, *, scanner: Scanner | None = None) -> int:
    """Deliver through the original MDA, or exit as the policy says; see module docs."""
    codes = ExitCodes()
    try:
        config, settings = _configure(request, "mda")
        codes = settings.codes
        try:
            program = find_program(request.command[0] if request.command else "")
        except HandoffError as exc:
            raise _fail(codes.usage, "4.3.5", f"mailwarden mda: {exc}", codes) from exc
        intake, decision = _process(request, stdin, config, settings, "mda", scanner)
        if decision.kind in DELIVERING and decision.data is not None:
            try:
                exec_mda(
                    program,
                    request.command,
                    (intake.from_line, decision.data),
                    threshold=settings.spool_threshold,
                )
            except HandoffError as exc:
                log.error("%s", exc)
                raise _fail(codes.usage, "4.3.0", f"mailwarden mda: {exc}", codes) from exc
        return _refusal(decision, codes, quarantine=codes.quarantine, discard=codes.discard)
    except _Stop as stop:
        return stop.code
    except Exception as exc:  # the boundary: whatever went wrong, the MTA keeps the mail
        return _internal(exc, "mda", codes)


def run_pipe(
    request: Request, stdin: BinaryIO, stdout: BinaryIO, *, scanner: Scanner | None = None
) -> int:
    """Write the accepted copy to ``stdout``, or exit as the policy says; see module docs."""
    codes = ExitCodes()
    try:
        config, settings = _configure(request, "pipe")
        codes = settings.codes
        intake, decision = _process(request, stdin, config, settings, "pipe", scanner)
        if decision.kind in DELIVERING and decision.data is not None:
            try:
                stdout.write(intake.from_line)
                stdout.write(decision.data)
                stdout.flush()
            except OSError as exc:
                raise _fail(
                    codes.tempfail, "4.3.0", f"mailwarden pipe: cannot write: {exc}", codes
                ) from exc
            return 0
        return _refusal(
            decision, codes, quarantine=codes.pipe_quarantine, discard=codes.pipe_discard
        )
    except _Stop as stop:
        return stop.code
    except Exception as exc:  # the boundary: whatever went wrong, the MTA keeps the mail
        return _internal(exc, "pipe", codes)


def _configure(request: Request, name: str) -> tuple[Config, MdaSettings]:
    try:
        config = load_config(request.config)
        return config, MdaSettings.from_config(config, daemon_socket=request.daemon_socket)
    except MailwardenError as exc:
        codes = ExitCodes()
        raise _fail(codes.usage, "4.3.5", f"mailwarden {name}: {exc}", codes) from exc


def _process(
    request: Request,
    stdin: BinaryIO,
    config: Config,
    settings: MdaSettings,
    name: str,
    scanner: Scanner | None,
) -> tuple[Intake, Decision]:
    codes = settings.codes
    try:
        intake = read_message(stdin, threshold=settings.spool_threshold)
    except IntakeError as exc:
        raise _fail(codes.tempfail, "4.3.0", f"mailwarden {name}: {exc}", codes) from exc
    envelope = Envelope(
        sender=request.sender,
        recipients=request.recipients,
        point=Point.MDA,
        agent=name,
    )
    decision = judge(Message(intake.raw, envelope), settings, config, scanner=scanner)
    if decision.kind in DELIVERING and decision.data is None:  # pragma: no cover - contract
        raise _fail(codes.tempfail, "4.3.0", f"mailwarden {name}: nothing to deliver", codes)
    return intake, decision


def _refusal(decision: Decision, codes: ExitCodes, *, quarantine: int, discard: int) -> int:
    """The exit status for an outcome that does not hand the message on."""
    code, line = refusal(decision, codes, quarantine=quarantine, discard=discard)
    if line:
        print(line, file=sys.stderr, flush=True)
    return code


def refusal(
    decision: Decision, codes: ExitCodes, *, quarantine: int, discard: int
) -> tuple[int, str]:
    """The exit status and the line for stderr ("" for none) of an outcome that does not
    hand the message on."""
    if decision.kind is ActionKind.QUARANTINE:
        code = quarantine
    elif decision.kind is ActionKind.DISCARD:
        code = discard
    elif decision.kind is ActionKind.REJECT:
        code = codes.reject
    else:
        code = codes.tempfail
    if not code:
        return code, ""
    text = decision.reply.text
    return code, reason_line(code, decision.reply.status, text, temporary=codes.tempfail)


def _fail(code: int, status: str, text: str, codes: ExitCodes) -> _Stop:
    say(code, status, text, temporary=codes.tempfail)
    return _Stop(code)


def _internal(exc: Exception, name: str, codes: ExitCodes) -> int:
    log.exception("internal error, the MTA keeps the mail")
    reason = " ".join(str(exc).split())[:200] or type(exc).__name__
    say(
        codes.tempfail,
        "4.3.0",
        f"mailwarden {name}: internal error: {reason}",
        temporary=codes.tempfail,
    )
    return codes.tempfail
