"""Sendmail: the plan for each way mailwarden sits in Sendmail (docs/sendmail.md, docs/mda.md).

Setup edits ``sendmail.mc`` (never ``sendmail.cf`` by hand) and rebuilds
``sendmail.cf`` from it with m4, as Debian's ``make -C /etc/mail`` does.
Everything it adds is one block between ``dnl # BEGIN mailwarden setup`` and
``dnl # END mailwarden setup``, placed before ``MAILER_DEFINITIONS`` (or the
first ``MAILER(``), so that it comes after every FEATURE that defines the
same macros:

* ``milter``: ``INPUT_MAIL_FILTER(`mailwarden', `S=<[milter] socket>, F=T,
  T=S:2m;R:2m;E:5m')``.  ``F=T``: Sendmail answers 4xx when the milter
  cannot be reached, so mail waits instead of passing unscanned.  Agent:
  ``milter``.
* ``mda``: ``LOCAL_MAILER_PATH``/``ARGS``/``FLAGS`` run ``mailwarden mda
  --sender $f --recipient $u@$j -- procmail -Y -a $h -d $u`` as the local
  mailer (flags ``SPhn9``: those of ``local_procmail`` without ``f``).
  Agent: ``mda-agent``, which the command hands each message to; the local
  mailer runs as root (``S``), which reaches the agent's socket as it is.

The command is ``m4 sendmail.mc > sendmail.cf`` (it ``touches`` sendmail.cf);
the checker ``sendmail -C sendmail.cf -bt -d0.1 < /dev/null``, which exits
non-zero on any line Sendmail cannot read; the reload ``systemctl reload
sendmail`` for the system's configuration, or a SIGHUP to the daemon named
by the ``PidFile`` of the configuration setup was pointed at.

SECURITY: runs m4, sendmail and systemctl/pkill without a shell of its own
(the m4 step is ``sh -c`` with the two paths as arguments, never pasted into
the script).  Values written into sendmail.mc come from mailwarden's
validated configuration and may not hold m4 quotes, commas or spaces.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from mailwarden.config import Config
from mailwarden.config.load import DEFAULT_PATH
from mailwarden.setup import mailwarden_side
from mailwarden.setup.marked_block import MarkedBlock
from mailwarden.setup.mta_tools import (
    active_line,
    find_program,
    mailwarden_config,
    pid_running,
    program_version,
    safe_value,
)
from mailwarden.setup.plan import Command, Detected, FileEdit, Plan, SetupContext, SetupError

MODES = ("milter", "mda")
SYSTEM_CONFIG_DIR = Path("/etc/mail")
#: Debian's sendmail-bin keeps the binary here; /usr/sbin/sendmail may be Postfix's
_BINARIES = ("/usr/libexec/sendmail/sendmail", "/usr/lib/sm.bin/sendmail", "/usr/sbin/sendmail")
DEFAULT_PID_FILE = Path("/run/sendmail/mta/sendmail.pid")
#: the milter's timeouts (docs/sendmail.md): the milter reports progress within E:
MILTER_FLAGS = "F=T, T=S:2m;R:2m;E:5m"
#: local_procmail's flags without ``f`` (docs/mda.md)
MDA_FLAGS = "SPhn9"
BLOCK = MarkedBlock(begin="dnl # BEGIN mailwarden setup", end="dnl # END mailwarden setup")
_MAILERS = re.compile(r"^\s*(MAILER_DEFINITIONS|MAILER\()")
_VERSION = re.compile(r"^Version (\S+)", re.MULTILINE)
_M4 = 'm4 "$1" > "$2"'


def _config_dir(ctx: SetupContext) -> Path:
    return (ctx.mta_config_dir or SYSTEM_CONFIG_DIR).absolute()


def _binary(ctx: SetupContext, *, version: bool) -> tuple[str, str] | None:
    """Sendmail's binary (and its version when asked): Postfix's sendmail does not count.

    Debian's own places are trusted without running the binary; a ``sendmail``
    elsewhere must report a Sendmail version (``-d0.1``).
    """
    known = [p for p in (find_program(ctx, extra=(b,)) for b in _BINARIES[:2]) if p]
    # the folders the administrator named come first, and are trusted like Debian's
    first = None if ctx.path is None else shutil.which("sendmail", path=ctx.path)
    other = find_program(ctx, "sendmail")
    candidates = [(first, True), *((k, True) for k in known), (other, False)]
    for candidate, trusted in candidates:
        if candidate is None:
            continue
        if trusted and not version:
            return candidate, ""
        found = _version(candidate)
        if found is not None:
            return candidate, found
    return None


def _version(binary: str) -> str | None:
    # Sendmail waits a minute when the host name has no domain
    return program_version([binary, "-d0.1", "-bt"], _VERSION, timeout=120)


def _pid_file(cf: Path) -> Path:
    try:
        text = cf.read_text(errors="replace")
    except OSError:
        return DEFAULT_PID_FILE
    match = re.search(r"^O PidFile=(\S+)", text, re.MULTILINE)
    return Path(match.group(1)) if match else DEFAULT_PID_FILE


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError as exc:
        raise SetupError(
            f"sendmail: {path}: no such file (setup edits sendmail.mc and builds sendmail.cf "
            "from it; is this Sendmail's folder?)"
        ) from exc
    except OSError as exc:
        raise SetupError(f"sendmail: {path}: cannot read: {exc.strerror or exc}") from exc


class SendmailIntegration:
    """``INTEGRATION`` of this module; see the module docstring."""

    mta = "sendmail"
    modes = MODES

    def detect(self, ctx: SetupContext) -> Detected | None:
        found = _binary(ctx, version=True)
        if found is None:
            return None
        config_dir = _config_dir(ctx)
        running = pid_running(_pid_file(config_dir / "sendmail.cf"))
        return Detected("sendmail", found[1], config_dir, running, MODES)

    def plan(self, ctx: SetupContext, mode: str) -> Plan:
        if mode not in MODES:
            raise SetupError(f"sendmail: no mode {mode!r} (modes: {', '.join(MODES)})")
        found = _binary(ctx, version=False)
        if found is None:
            raise SetupError("sendmail: not installed (no Sendmail binary in PATH)")
        binary = found[0]
        folder = _config_dir(ctx)
        mc, cf = folder / "sendmail.mc", folder / "sendmail.cf"
        text = _read(mc)
        config = mailwarden_config(ctx)
        settings: dict[str, dict[str, object]] = {}
        if mode == "milter":
            body, notes, agents = _milter(text, config, str(mc))
        else:
            body, notes, agents = _mda(text, ctx, str(mc))
            side = mailwarden_side.mda_agent(config, "root")
            agents, settings = side.agents, side.settings
            notes += side.notes
        new = BLOCK.put(text, body, before=_MAILERS, where=str(mc))
        edits: tuple[FileEdit, ...] = ()
        commands: tuple[Command, ...] = ()
        if new != text or not cf.exists():
            edits = (FileEdit(mc, new, why=f"{mc}: mailwarden ({mode})"),)
            commands = (
                Command(
                    ("sh", "-c", _M4, "m4", str(mc), str(cf)),
                    why="rebuild sendmail.cf from sendmail.mc",
                    touches=(cf,),
                ),
            )
        if ctx.mta_config_dir is None:
            reload = Command(
                ("systemctl", "reload", "sendmail"),
                why="Sendmail reads sendmail.cf again",
                needs_running_mta=True,
            )
        else:
            reload = Command(
                ("pkill", "-HUP", "-F", str(_pid_file(cf))),
                why="the daemon of this configuration reads sendmail.cf again",
                needs_running_mta=True,
            )
        return Plan(
            mta="sendmail",
            mode=mode,
            edits=edits,
            commands=commands,
            checks=(
                Command(
                    (binary, "-C", str(cf), "-bt", "-d0.1"),
                    why="Sendmail reads the new sendmail.cf (address test mode, no input)",
                ),
            ),
            reloads=(reload,),
            agents=agents,
            settings=settings,
            notes=tuple(notes),
        )


def _foreign(text: str, pattern: str, where: str, what: str) -> None:
    """Refuse a setting made by hand outside setup's block (it would be doubled)."""
    block = BLOCK.find(text, where) or ""
    outside = text.replace(block, "") if block else text
    line = active_line(outside, pattern, comment="dnl")
    if line is not None:
        raise SetupError(
            f"sendmail: {where} already has {what} ({line}); remove it or leave "
            "the configuration as it is"
        )


def _milter(text: str, config: Config, where: str) -> tuple[str, list[str], tuple[str, ...]]:
    _foreign(text, r"INPUT_MAIL_FILTER\(\s*`?mailwarden", where, "a mailwarden milter")
    socket = safe_value(str(config["milter"]["socket"]), "[milter] socket")
    body = (
        f"{BLOCK.begin} (milter): `mailwarden setup --uninstall' removes it\n"
        f"INPUT_MAIL_FILTER(`mailwarden', `S={socket}, {MILTER_FLAGS}')dnl\n"
        f"{BLOCK.end}\n"
    )
    notes = [
        f"Sendmail asks mailwarden milter on {socket} ([milter] socket); F=T: while the "
        "milter is down, clients get a temporary failure and keep their mail",
    ]
    return body, notes, ("milter",)


def _mda(text: str, ctx: SetupContext, where: str) -> tuple[str, list[str], tuple[str, ...]]:
    _foreign(text, r"\bLOCAL_MAILER_ARGS\b.*mailwarden", where, "a mailwarden local mailer")
    procmail = find_program(ctx, "procmail")
    if procmail is None:
        raise SetupError(
            "sendmail: the mda mode hands mail to procmail after the scan and procmail is "
            "not installed"
        )
    program = safe_value(ctx.mailwarden, "the mailwarden command")
    procmail = safe_value(procmail, "procmail's path")
    mda = "mailwarden mda"
    if ctx.mailwarden_config != DEFAULT_PATH:
        mda += " -c " + safe_value(str(ctx.mailwarden_config), "mailwarden's configuration")
    body = (
        f"{BLOCK.begin} (mda): `mailwarden setup --uninstall' removes it\n"
        f"define(`LOCAL_MAILER_PATH', `{program}')dnl\n"
        f"define(`LOCAL_MAILER_ARGS', `{mda} --sender $f --recipient $u@$j -- "
        f"{procmail} -Y -a $h -d $u')dnl\n"
        f"define(`LOCAL_MAILER_FLAGS', `{MDA_FLAGS}')dnl\n"
        f"{BLOCK.end}\n"
    )
    if not re.search(r"^\s*MAILER\(\s*`?local", text, re.MULTILINE):
        raise SetupError(f"sendmail: {where} has no MAILER(`local'): there is no local mailer")
    notes = [
        f"Sendmail's local mailer runs {program} as `{mda} ... -- {procmail} -d USER` "
        "(as root, flag S); exit 75 queues the mail, 77 bounces it (docs/mda.md)",
    ]
    return body, notes, ()


INTEGRATION = SendmailIntegration()
