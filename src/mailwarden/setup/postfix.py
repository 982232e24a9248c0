"""Postfix: the plan for each way mailwarden sits in Postfix (docs/postfix.md, docs/milter.md,
docs/mda.md).

Modes, each Postfix's own documented mechanism:

* ``content-filter`` (FILTER_README, after queue): ``content_filter =
  scan:[HOST]:PORT`` in main.cf, a ``scan`` smtp (or ``scanlmtp`` lmtp)
  transport with XFORWARD, and the re-injection smtpd on ``[smtp_filter]
  downstream`` with the overrides that keep mail from being filtered twice.
  Agent: ``smtp-filter``.
* ``proxy`` (SMTPD_PROXY_README, before queue): ``smtpd_proxy_filter`` on the
  public smtpd service (``smtp`` unless ``--smtp-service``) and the
  after-filter smtpd on ``[smtp_proxy] downstream``.  Agent: ``smtp-proxy``.
* ``milter``: ``smtpd_milters`` and ``non_smtpd_milters`` with
  ``milter_default_action = tempfail`` (mail waits when the milter is down).
  Agent: ``milter``.  A unix socket outside the chroot of a chrooted smtpd
  cannot be reached, so the plan then moves the milter to
  ``inet:8890@127.0.0.1`` and says so.
* ``mda``: ``mailbox_command`` runs ``mailwarden mda`` in front of the
  current one (procmail when there is none).  Agent: ``mda-agent``, which
  the command hands each message to; local(8) runs it as each recipient
  with their primary group only, so the agent's socket is 0666
  (``mailwarden_side.mda_agent``).

Every change is a ``postconf`` command (``-e`` for main.cf, ``-M`` and
``-P`` for master.cf) that ``touches`` the file it rewrites; a setting that
already holds is left out, so a second run is "nothing to do".  The ports and
sockets come from mailwarden's configuration (``[smtp_filter] listen``...),
so both sides agree.  The checker is ``postfix check``; the reload
``postfix reload`` (skipped when Postfix is not running).

SECURITY: runs ``postconf`` and ``postfix`` from PATH (``ctx.path`` first)
without a shell; values written to Postfix come from mailwarden's validated
configuration.  Everything the plan adds listens on loopback as configured.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

from mailwarden.config import Config
from mailwarden.setup import mailwarden_side
from mailwarden.setup.mta_tools import mailwarden_config, search_path
from mailwarden.setup.plan import Command, Detected, Plan, SetupContext, SetupError

MODES = ("content-filter", "proxy", "milter", "mda")
SYSTEM_CONFIG_DIR = Path("/etc/postfix")
#: where the milter moves when a chrooted smtpd could not reach its unix socket
CHROOT_MILTER = "inet:8890@127.0.0.1"

#: FILTER_README's re-injection smtpd: no filter again, no checks done twice
_REINJECT_FILTER = (
    ("content_filter", ""),
    ("receive_override_options", "no_unknown_recipient_checks,no_header_body_checks,no_milters"),
    ("smtpd_helo_restrictions", ""),
    ("smtpd_client_restrictions", ""),
    ("smtpd_sender_restrictions", ""),
    ("smtpd_recipient_restrictions", "permit_mynetworks,reject"),
    ("smtpd_data_restrictions", ""),
    ("mynetworks", "127.0.0.0/8"),
    ("smtpd_authorized_xforward_hosts", "127.0.0.0/8"),
)
#: SMTPD_PROXY_README's after-filter smtpd
_REINJECT_PROXY = (
    ("smtpd_authorized_xforward_hosts", "127.0.0.0/8"),
    ("smtpd_client_restrictions", ""),
    ("smtpd_helo_restrictions", ""),
    ("smtpd_sender_restrictions", ""),
    ("smtpd_recipient_restrictions", "permit_mynetworks,reject"),
    ("smtpd_data_restrictions", ""),
    ("mynetworks", "127.0.0.0/8"),
    ("receive_override_options", "no_unknown_recipient_checks"),
)


def _config_dir(ctx: SetupContext) -> Path:
    """``--mta-config-dir``, else the folder Postfix itself reports (``config_directory``)."""
    if ctx.mta_config_dir is not None:
        return ctx.mta_config_dir.absolute()
    postconf = shutil.which("postconf", path=search_path(ctx))
    if postconf is not None:
        try:
            done = subprocess.run(
                [postconf, "-h", "config_directory"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired):
            return SYSTEM_CONFIG_DIR
        reported = done.stdout.strip()
        if done.returncode == 0 and reported.startswith("/"):
            return Path(reported)
    return SYSTEM_CONFIG_DIR


class _Postfix:
    """The Postfix instance ``ctx`` points at, asked through ``postconf``."""

    def __init__(self, ctx: SetupContext) -> None:
        self.ctx = ctx
        self.dir = _config_dir(ctx)
        postconf = shutil.which("postconf", path=search_path(ctx))
        postfix = shutil.which("postfix", path=search_path(ctx))
        if postconf is None or postfix is None:
            raise SetupError("postfix: not installed (no postconf or postfix command in PATH)")
        self.postconf_bin, self.postfix_bin = postconf, postfix
        main = self.dir / "main.cf"
        if not main.is_file():
            raise SetupError(f"postfix: {main}: no such file (is {self.dir} Postfix's folder?)")
        if not os.access(main, os.R_OK) or not os.access(self.dir / "master.cf", os.R_OK):
            raise SetupError(f"postfix: {self.dir}: main.cf or master.cf is not readable")

    def dir_args(self) -> tuple[str, ...]:
        # postconf and postfix need the folder absolute; left out for the system's
        return () if self.ctx.mta_config_dir is None else ("-c", str(self.dir))

    def postconf(self, *args: str) -> str:
        argv = ["postconf", *self.dir_args(), *args]
        try:
            done = subprocess.run(
                [self.postconf_bin, *argv[1:]],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SetupError(f"{shlex.join(argv)}: {exc}") from exc
        if done.returncode != 0:
            raise SetupError(f"{shlex.join(argv)} failed: {(done.stderr or done.stdout).strip()}")
        return done.stdout

    def param(self, name: str) -> str:
        return self.postconf("-h", name).strip()

    def service_fields(self, service: str) -> dict[str, str] | None:
        """``postconf -F`` of ``name/type``: its fields, None when it is not in master.cf."""
        out = self.postconf("-F", service)
        fields = {}
        for line in out.splitlines():
            key, _, value = line.partition(" = ")
            fields[key.rsplit("/", 1)[-1]] = value.strip()
        return fields or None

    def service_params(self, service: str) -> dict[str, str]:
        out = self.postconf("-P", service)
        params = {}
        for line in out.splitlines():
            key, sep, value = line.partition(" =")
            if sep:
                params[key.rsplit("/", 1)[-1]] = value.strip()
        return params

    def command(self, *args: str, why: str = "", touches: str = "") -> Command:
        return Command(
            ("postconf", *self.dir_args(), *args),
            why=why,
            touches=(self.dir / touches,) if touches else (),
        )

    def postfix(self, *args: str, **kw: object) -> Command:
        return Command(("postfix", *self.dir_args(), *args), **kw)  # type: ignore[arg-type]


def _host_port(value: str, key: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise SetupError(f"{key} = {value!r}: Postfix needs HOST:PORT here")
    return host.strip("[]"), int(port)


class _Planner:
    """Collects the postconf commands whose settings do not hold yet."""

    def __init__(self, pf: _Postfix) -> None:
        self.pf = pf
        self.commands: list[Command] = []

    def main(self, name: str, value: str, why: str = "") -> None:
        if self.pf.param(name) != value:
            self.commands.append(
                self.pf.command("-e", f"{name}={value}", why=why, touches="main.cf")
            )

    def service(
        self,
        name: str,
        kind: str,
        fields: tuple[str, ...],
        params: tuple[tuple[str, str], ...],
        why: str = "",
    ) -> None:
        """A master.cf entry ``name kind fields...`` with ``-o`` ``params``."""
        service = f"{name}/{kind}"
        current = self.pf.service_fields(service)
        want = dict(
            zip(
                ("private", "unprivileged", "chroot", "wakeup", "process_limit"),
                fields[:5],
                strict=True,
            )
        )
        program = fields[-1]
        same = current is not None and all(current.get(k) == v for k, v in want.items())
        if current is None or not same or current.get("command", "").split()[:1] != [program]:
            line = " ".join((name, kind, *fields))
            self.commands.append(
                self.pf.command("-M", f"{service}={line}", why=why, touches="master.cf")
            )
            have: dict[str, str] = {}
        else:
            have = self.pf.service_params(service)
        self.params(service, params, have)

    def params(
        self, service: str, params: tuple[tuple[str, str], ...], have: dict[str, str] | None = None
    ) -> None:
        if have is None:
            have = self.pf.service_params(service)
        missing = [f"{service}/{k}={v}" for k, v in params if have.get(k) != v]
        if missing:
            self.commands.append(self.pf.command("-P", *missing, touches="master.cf"))


class PostfixIntegration:
    """``INTEGRATION`` of this module; see the module docstring."""

    mta = "postfix"
    modes = MODES

    def detect(self, ctx: SetupContext) -> Detected | None:
        postconf = shutil.which("postconf", path=search_path(ctx))
        if postconf is None:
            return None
        try:
            done = subprocess.run(
                [postconf, "-d", "-h", "mail_version"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        version = done.stdout.strip() or "unknown"
        config_dir = _config_dir(ctx)
        running = False
        postfix = shutil.which("postfix", path=search_path(ctx))
        if postfix is not None and (config_dir / "main.cf").is_file():
            args = [] if ctx.mta_config_dir is None else ["-c", str(config_dir)]
            try:
                status = subprocess.run(
                    [postfix, *args, "status"], capture_output=True, timeout=60, check=False
                )
                running = status.returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                running = False
        return Detected("postfix", version, config_dir, running, MODES)

    def plan(self, ctx: SetupContext, mode: str) -> Plan:
        if mode not in MODES:
            raise SetupError(f"postfix: no mode {mode!r} (modes: {', '.join(MODES)})")
        pf = _Postfix(ctx)
        config = mailwarden_config(ctx)
        planner = _Planner(pf)
        notes: list[str] = []
        agents: tuple[str, ...] = ()
        settings: dict[str, dict[str, object]] = {}
        if mode == "content-filter":
            agents = ("smtp-filter",)
            notes += _content_filter(planner, config)
        elif mode == "proxy":
            agents = ("smtp-proxy",)
            notes += _proxy(planner, config, ctx.smtp_service or "smtp")
        elif mode == "milter":
            agents = ("milter",)
            notes += _milter(planner, config, pf, settings)
        else:
            notes += _mda(planner, ctx)
            # local(8) runs the command as each recipient, primary group only
            side = mailwarden_side.mda_agent(config, "any-user")
            agents, settings = side.agents, side.settings
            notes += side.notes
        return Plan(
            mta="postfix",
            mode=mode,
            commands=tuple(planner.commands),
            checks=(pf.postfix("check", why="Postfix's own configuration check"),),
            reloads=(
                pf.postfix("reload", why="read the new configuration", needs_running_mta=True),
            ),
            agents=agents,
            settings=settings,
            notes=tuple(notes),
        )


def _content_filter(planner: _Planner, config: Config) -> list[str]:
    section = config["smtp_filter"]
    host, port = _host_port(section["listen"], "[smtp_filter] listen")
    downstream = section["downstream"]
    if str(downstream).startswith("maildir:"):
        raise SetupError(
            f"[smtp_filter] downstream = {downstream!r}: Postfix's content filter needs the "
            "re-injection server as HOST:PORT (such as 127.0.0.1:10026)"
        )
    dhost, dport = _host_port(downstream, "[smtp_filter] downstream")
    maxproc = str(min(10, int(section["max_sessions"])))
    lmtp = bool(section["lmtp"])
    transport, program = ("scanlmtp", "lmtp") if lmtp else ("scan", "smtp")
    planner.service(
        transport,
        "unix",
        ("-", "-", "n", "-", maxproc, program),
        (
            (f"{program}_send_xforward_command", "yes"),
            ("disable_mime_output_conversion", "yes"),
            *(() if lmtp else (("smtp_generic_maps", ""),)),
        ),
        why="the transport that hands mail to mailwarden smtp-filter",
    )
    planner.service(
        f"{dhost}:{dport}",
        "inet",
        ("n", "-", "n", "-", maxproc, "smtpd"),
        _REINJECT_FILTER,
        why="where mailwarden re-injects: no filter again",
    )
    current = planner.pf.param("content_filter")
    wanted = f"{transport}:[{host}]:{port}"
    if current and current != wanted:
        raise SetupError(
            f"postfix: content_filter is already {current}: another content filter is "
            "installed and Postfix hands mail to one; remove it first (docs/setup.md)"
        )
    planner.main("content_filter", wanted, why="FILTER_README")
    return [
        f"mail goes to mailwarden smtp-filter on {host}:{port} ([smtp_filter] listen) and "
        f"comes back on {dhost}:{dport} ([smtp_filter] downstream)"
    ]


def _proxy(planner: _Planner, config: Config, smtp_service: str) -> list[str]:
    section = config["smtp_proxy"]
    host, port = _host_port(section["listen"], "[smtp_proxy] listen")
    dhost, dport = _host_port(section["downstream"], "[smtp_proxy] downstream")
    service = f"{smtp_service}/inet"
    if planner.pf.service_fields(service) is None:
        raise SetupError(
            f"postfix: master.cf has no {service} service to put the proxy in front of "
            "(name it with --smtp-service)"
        )
    current = planner.pf.service_params(service).get("smtpd_proxy_filter", "")
    if current and current != f"{host}:{port}":
        raise SetupError(
            f"postfix: {service} already has smtpd_proxy_filter={current}: another "
            "before-queue filter is installed; remove it first (docs/setup.md)"
        )
    timeout = int(float(section["scan_timeout"])) + 30
    planner.params(
        service,
        (("smtpd_proxy_filter", f"{host}:{port}"), ("smtpd_proxy_timeout", f"{timeout}s")),
    )
    planner.service(
        f"{dhost}:{dport}",
        "inet",
        ("n", "-", "n", "-", "-", "smtpd"),
        _REINJECT_PROXY,
        why="the after-filter smtpd the proxy hands mail to",
    )
    return [
        f"the {smtp_service} smtpd waits for mailwarden smtp-proxy on {host}:{port} for each "
        f"message (smtpd_proxy_timeout {timeout}s, above [smtp_proxy] scan_timeout)"
    ]


def _postfix_milter(address: str) -> str:
    """Sendmail's notation (``inet:PORT@HOST``) as Postfix writes it (``inet:HOST:PORT``)."""
    kind, _, rest = address.partition(":")
    if kind in ("unix", "local"):
        return f"unix:{rest}"
    port, _, host = rest.partition("@")
    return f"{kind}:{host or '127.0.0.1'}:{port}"


def _milter(
    planner: _Planner, config: Config, pf: _Postfix, settings: dict[str, dict[str, object]]
) -> list[str]:
    notes = []
    address = str(config["milter"]["socket"])
    kind, _, path = address.partition(":")
    if kind in ("unix", "local"):
        smtp = pf.service_fields(f"{pf.ctx.smtp_service or 'smtp'}/inet") or {}
        queue = pf.param("queue_directory")
        if smtp.get("chroot", "y") in ("y", "-") and not path.startswith(queue.rstrip("/") + "/"):
            settings["milter"] = {"socket": CHROOT_MILTER}
            notes.append(
                f"smtpd runs chrooted in {queue} and cannot reach {path}: the milter "
                f"listens on {CHROOT_MILTER} instead ([milter] socket)"
            )
            address = CHROOT_MILTER
    milter = _postfix_milter(address)
    for name, why in (
        ("smtpd_milters", "mail received by SMTP"),
        ("non_smtpd_milters", "mail submitted on this host"),
    ):
        # other milters (DKIM, SPF...) stay, ours comes after them
        present = pf.postconf("-x", "-h", name).replace(",", " ").split()
        raw = pf.param(name)
        if milter in present or (
            name == "non_smtpd_milters" and re.search(r"\$\{?smtpd_milters\b", raw)
        ):
            continue  # there already, or it follows smtpd_milters
        if raw:
            notes.append(f"{name} keeps {raw} and adds {milter} after it")
        planner.main(name, f"{raw}, {milter}" if raw else milter, why=why)
    planner.main("milter_default_action", "tempfail", why="milter down: the mail waits")
    planner.main("milter_protocol", "6")
    return notes


def _mda(planner: _Planner, ctx: SetupContext) -> list[str]:
    current = planner.pf.param("mailbox_command")
    command = mailwarden_side.command_line(ctx, "mda")
    prefix = f'{command} --sender "$SENDER" --recipient "$RECIPIENT" -- '
    if current.startswith(prefix):
        return []
    if f"{ctx.mailwarden} mda" in current or "mailwarden mda" in current:
        raise SetupError(
            f"postfix: mailbox_command already runs mailwarden mda ({current}); "
            "edit it by hand or restore it first"
        )
    original = current
    notes = []
    if not original:
        procmail = shutil.which("procmail", path=search_path(ctx))
        if procmail is None:
            raise SetupError(
                "postfix: mailbox_command is empty (local(8) writes mailboxes itself) and "
                "procmail is not installed: set mailbox_command to your MDA first"
            )
        original = f'{procmail} -a "$EXTENSION"'
        notes.append(f"mailbox_command was empty: mailwarden hands mail to {procmail}")
    planner.main("mailbox_command", prefix + original, why="scan before the MDA stores mail")
    return notes


INTEGRATION = PostfixIntegration()
