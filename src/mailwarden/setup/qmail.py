"""qmail: the plan for ``mailwarden qmail-queue`` and ``mailwarden mda`` (docs/qmail.md).

qmail is not packaged by Debian; this follows the standard layout under
``/var/qmail`` (``--mta-config-dir`` names another qmail home)::

    /var/qmail/bin/qmail-queue, qmail-smtpd       the programs
    /var/qmail/rc                                 starts qmail-start (default delivery)
    /var/qmail/control/defaultdelivery            the delivery, when rc reads it from there
    /var/qmail/supervise/qmail-smtpd/run          the SMTP service (daemontools)

Modes:

* ``qmail-queue``: a wrapper script ``bin/qmail-scan-queue`` runs
  ``mailwarden qmail-queue``.  When ``qmail-smtpd`` knows ``QMAILQUEUE``
  (netqmail, notqmail: the name is in the program), the run script of
  qmail-smtpd starts it with ``env QMAILQUEUE=.../qmail-scan-queue`` (recipe
  1: mail from SMTP is scanned, and the service is restarted with ``svc -t``).
  Otherwise the real ``qmail-queue`` becomes ``qmail-queue.orig`` and the
  wrapper takes its place (recipe 2: every queued message is scanned).
* ``mda``: qmail-start's default delivery becomes ``|preline mailwarden mda
  ... -- MDA``: a program delivery is wrapped as it is; a mailbox or Maildir
  (``./Mailbox``, ``./Maildir/``) is handed to procmail with that ``DEFAULT``.
  Agent: ``mda-agent``, which the command hands each message to;
  qmail-local runs it as each recipient with their primary group only
  (qmail-lspawn sets no other group), so the agent's socket is 0666.

There is no qmail checker: the checks are ``sh -n`` on every script setup
wrote or edited and ``test -x`` on the real qmail-queue the wrapper runs.

SECURITY: the wrapper is 0755 and owned by whoever runs setup (root); the
real qmail-queue keeps its owner and setuid bits through the rename (and
through the backup).  Values written into shell scripts are quoted.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from mailwarden.config import Config
from mailwarden.setup import mailwarden_side
from mailwarden.setup.mta_tools import find_program, mailwarden_config
from mailwarden.setup.plan import Command, Detected, FileEdit, Plan, SetupContext, SetupError

MODES = ("qmail-queue", "mda")
SYSTEM_HOME = Path("/var/qmail")
WRAPPER = "qmail-scan-queue"
_DELIVERY = re.compile(r"""qmail-start\s+('[^']*'|"[^"]*"|\S+)""")


def _home(ctx: SetupContext) -> Path:
    return (ctx.mta_config_dir or SYSTEM_HOME).absolute()


def _running(home: Path, program: str) -> bool:
    """True when a process runs ``home/bin/program`` (read from /proc)."""
    target = str(home / "bin" / program)
    try:
        entries = os.listdir("/proc")
    except OSError:
        return False
    for pid in entries:
        if pid.isdigit():
            try:
                if os.readlink(f"/proc/{pid}/exe") == target:
                    return True
            except OSError:
                continue
    return False


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SetupError(f"qmail: {path}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise SetupError(f"qmail: {path}: not UTF-8 text; edit it by hand") from exc
    except OSError as exc:
        raise SetupError(f"qmail: {path}: cannot read: {exc.strerror or exc}") from exc


def _knows_qmailqueue(smtpd: Path) -> bool:
    try:
        return b"QMAILQUEUE" in smtpd.read_bytes()
    except OSError:
        return False


def _syntax_check(path: Path) -> Command:
    return Command(("sh", "-n", str(path)), why="the shell reads the script")


class QmailIntegration:
    """``INTEGRATION`` of this module; see the module docstring."""

    mta = "qmail"
    modes = MODES

    def detect(self, ctx: SetupContext) -> Detected | None:
        home = _home(ctx)
        if not os.access(home / "bin" / "qmail-queue", os.X_OK):
            return None
        if _knows_qmailqueue(home / "bin" / "qmail-smtpd"):
            version = "netqmail/notqmail (QMAILQUEUE)"
        else:
            version = "qmail 1.03 (no QMAILQUEUE)"
        return Detected("qmail", version, home, _running(home, "qmail-send"), MODES)

    def plan(self, ctx: SetupContext, mode: str) -> Plan:
        if mode not in MODES:
            raise SetupError(f"qmail: no mode {mode!r} (modes: {', '.join(MODES)})")
        home = _home(ctx)
        if self.detect(ctx) is None:
            raise SetupError(f"qmail: not installed ({home}/bin/qmail-queue is missing)")
        if mode == "qmail-queue":
            return _qmail_queue(ctx, home)
        return _mda(ctx, home, mailwarden_config(ctx))


def _qmail_queue(ctx: SetupContext, home: Path) -> Plan:
    bin_dir = home / "bin"
    real, orig, wrapper = bin_dir / "qmail-queue", bin_dir / "qmail-queue.orig", bin_dir / WRAPPER
    notes = [
        "qmail-queue runs as the client's user (qmaild for SMTP): it must reach the daemon's "
        "socket ([daemon] socket_group) and write the quarantine store; docs/qmail.md"
    ]
    if _knows_qmailqueue(bin_dir / "qmail-smtpd"):
        text = mailwarden_side.wrapper_script(ctx, "qmail-queue", "--qmail-queue", str(real))
        run = home / "supervise" / "qmail-smtpd" / "run"
        current = _read(run)
        setting = f"QMAILQUEUE={shlex.quote(str(wrapper))}"
        found = re.search(r"QMAILQUEUE=(\S+)", current)
        if found and found.group(0) != setting:
            raise SetupError(
                f"qmail: {run} already sets {found.group(0)}; remove it or point it at "
                f"{wrapper} by hand"
            )
        edited = current
        if not found:
            smtpd = re.search(r"(?m)(\S*qmail-smtpd)(?=\s|$)", current)
            if smtpd is None:
                raise SetupError(f"qmail: {run} does not start qmail-smtpd; nothing to edit")
            edited = current[: smtpd.start()] + f"env {setting} " + current[smtpd.start() :]
        notes.append("qmail-smtpd is restarted to read QMAILQUEUE; mail from SMTP is scanned")
        return Plan(
            mta="qmail",
            mode="qmail-queue",
            edits=(
                FileEdit(wrapper, text, mode=0o755, why="runs mailwarden qmail-queue"),
                FileEdit(run, edited, why="qmail-smtpd queues through the wrapper"),
            ),
            checks=(
                _syntax_check(wrapper),
                _syntax_check(run),
                Command(("test", "-x", str(real)), why="the real qmail-queue"),
            ),
            reloads=(
                Command(
                    ("svc", "-t", str(run.parent)),
                    why="restart qmail-smtpd",
                    needs_running_mta=True,
                ),
            ),
            notes=tuple(notes),
        )
    # recipe 2: the wrapper takes qmail-queue's place
    text = mailwarden_side.wrapper_script(ctx, "qmail-queue", "--qmail-queue", str(orig))
    commands: tuple[Command, ...] = ()
    if orig.exists():
        if real.read_bytes() != text.encode():
            raise SetupError(
                f"qmail: {orig} exists but {real} is not mailwarden's wrapper: another "
                "wrapper is installed; remove it first"
            )
    else:
        commands = (
            Command(
                ("mv", str(real), str(orig)),
                why="keep the real qmail-queue (owner and setuid bit) under a new name",
                touches=(real, orig),
            ),
            Command(
                ("install", "-m", "0755", str(wrapper), str(real)),
                why="the wrapper takes its place",
                touches=(real,),
            ),
        )
    notes.append("qmail-smtpd has no QMAILQUEUE: every queued message goes through the wrapper")
    return Plan(
        mta="qmail",
        mode="qmail-queue",
        edits=(FileEdit(wrapper, text, mode=0o755, why="runs mailwarden qmail-queue"),),
        commands=commands,
        checks=(
            _syntax_check(wrapper),
            Command(("test", "-x", str(orig)), why="the real qmail-queue, renamed"),
        ),
        notes=tuple(notes),
    )


def _mda(ctx: SetupContext, home: Path, config: Config) -> Plan:
    rc = home / "rc"
    rc_text = _read(rc)
    prefix = (
        f"|preline {mailwarden_side.command_line(ctx, 'mda')} "
        '--sender "$SENDER" --recipient "$RECIPIENT" -- '
    )
    if "control/defaultdelivery" in rc_text:
        target = home / "control" / "defaultdelivery"
        current_file = _read(target)
        lines = current_file.splitlines()
        delivery = lines[0].strip() if lines else ""
        new_delivery = _wrap(ctx, delivery, prefix)
        new_text = "\n".join([new_delivery, *lines[1:]]) + "\n"
        edit = FileEdit(target, new_text, why="qmail-start's default delivery")
        checks: tuple[Command, ...] = (_syntax_check(rc),)
    else:
        found = _DELIVERY.search(rc_text)
        if found is None:
            raise SetupError(f"qmail: {rc} does not run qmail-start with a default delivery")
        word = found.group(1)
        delivery = shlex.split(word)[0] if word[:1] in "'\"" else word
        new_delivery = _wrap(ctx, delivery, prefix)
        quoted = shlex.quote(new_delivery) if new_delivery != delivery else word
        new_text = rc_text[: found.start(1)] + quoted + rc_text[found.end(1) :]
        edit = FileEdit(rc, new_text, why="qmail-start's default delivery")
        checks = (_syntax_check(rc),)
    supervise = home / "supervise" / "qmail-send"
    reloads: tuple[Command, ...] = ()
    notes = [
        "users with their own .qmail file keep their delivery; docs/qmail.md shows the line "
        "to put there"
    ]
    if supervise.is_dir():
        reloads = (
            Command(
                ("svc", "-t", str(supervise)),
                why="qmail-start reads its delivery when it starts",
                needs_running_mta=True,
            ),
        )
    else:
        notes.append("restart qmail: qmail-start reads the default delivery only when it starts")
    side = mailwarden_side.mda_agent(config, "any-user")
    return Plan(
        mta="qmail",
        mode="mda",
        edits=(edit,),
        checks=checks,
        reloads=reloads,
        agents=side.agents,
        settings=side.settings,
        notes=(*notes, *side.notes),
    )


def _wrap(ctx: SetupContext, delivery: str, prefix: str) -> str:
    """The default delivery with mailwarden mda in front of it."""
    if delivery.startswith(prefix):
        return delivery
    if "mailwarden" in delivery:
        raise SetupError(f"qmail: the default delivery already runs mailwarden: {delivery}")
    if delivery.startswith("|"):
        return prefix + delivery[1:].lstrip()
    if not delivery or not delivery.startswith(("./", "/")):
        raise SetupError(f"qmail: cannot read the default delivery {delivery!r}")
    procmail = find_program(ctx, "procmail")
    if procmail is None:
        raise SetupError(
            f"qmail: the default delivery is the mailbox {delivery}, which mailwarden hands to "
            "procmail, and procmail is not installed"
        )
    return prefix + f"{procmail} DEFAULT={delivery}"


INTEGRATION = QmailIntegration()
