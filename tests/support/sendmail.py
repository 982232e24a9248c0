"""A private Sendmail instance from Debian's packages, unpacked in its own root, for tests.

Debian's sendmail and postfix packages conflict, so Sendmail is not
installed: ``sendmail-bin``, ``sendmail-base`` and ``sendmail-cf`` are
fetched with ``apt-get download`` and unpacked with ``dpkg -x`` into a root
of their own (:func:`sendmail_root`; ``scripts/bootstrap`` does it once for
CI).  Each instance gets a ``sendmail.cf`` built with m4 from sendmail-cf's
macros, its own queue folder, pid and status files, and listens on its own
loopback port::

    root = sendmail_root()                         # unpacked packages (or None)
    sm = SendmailInstance.create(tmp / "sm", root, port=..., relay_port=...,
                                 milter="inet:8890@127.0.0.1")
    sm.start()                                     # sendmail -C ... -bD, by PID
    sm.queue()                                     # files in its queue folder
    sm.stop()

Everything is relayed to ``[127.0.0.1]:relay_port`` (a sink in the test):
the tests look at what arrives there.  ``milter`` adds
``INPUT_MAIL_FILTER(`mailwarden', `S=..., F=T, T=S:2m;R:2m;E:5m')``:
``F=T`` makes Sendmail answer with a temporary failure when the filter is
unreachable.

Sendmail refuses to start for a minute when the machine's host name has no
domain; the instance runs in its own UTS namespace (``unshare -u``) with
the host name ``mx.test.example``, so neither DNS nor /etc/hosts matter.

SECURITY: test-only.  Needs root (the daemon binds, unshares and keeps its
queue as root); listens on 127.0.0.1 only and is stopped by its PID.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from support.private_root import Daemon, unpacked_root
from support.private_root import missing_libraries as _missing_libraries
from support.tools import missing

PACKAGES = ("sendmail-bin", "sendmail-base", "sendmail-cf")
#: where the unpacked packages live unless $MAILWARDEN_SENDMAIL_ROOT says otherwise
DEFAULT_ROOT = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / (
    "mailwarden/sendmail-root"
)
HOSTNAME = "mx.test.example"
BINARY = "usr/libexec/sendmail/sendmail"
CF_DIR = "usr/share/sendmail/cf"


def sendmail_root(*, fetch: bool = True) -> Path | None:
    """The unpacked packages, fetched and unpacked first when ``fetch`` and apt-get can."""
    return unpacked_root(DEFAULT_ROOT, "MAILWARDEN_SENDMAIL_ROOT", PACKAGES, BINARY, fetch=fetch)


def missing_libraries(root: Path) -> list[str]:
    """Shared libraries the binary cannot find (installed by bootstrap: libwrap0, ...)."""
    return _missing_libraries(root / BINARY)


def require_sendmail_root() -> Path:
    """The unpacked root, for tests that run Sendmail (fail under CI, else skip)."""
    if os.geteuid() != 0:
        missing("a private Sendmail instance needs root")
    for tool in ("m4", "unshare"):
        if shutil.which(tool) is None:
            missing(f"{tool} is not installed (scripts/bootstrap installs it)")
    root = sendmail_root()
    if root is None:
        missing("Sendmail's Debian packages could not be fetched (scripts/bootstrap does it)")
    lacking = missing_libraries(root)
    if lacking:
        missing(f"Sendmail needs {', '.join(lacking)} (scripts/bootstrap installs them)")
    return root


@dataclass
class SendmailInstance:
    folder: Path
    root: Path
    port: int
    relay_port: int
    daemon: Daemon | None = None

    @property
    def cf(self) -> Path:
        return self.folder / "sendmail.cf"

    @property
    def queue_dir(self) -> Path:
        return self.folder / "queue"

    @property
    def log_file(self) -> Path:
        return self.folder / "sendmail.out"

    @classmethod
    def create(
        cls,
        folder: Path,
        root: Path,
        *,
        port: int,
        relay_port: int,
        milter: str | None = None,
        milter_flags: str = "F=T, T=S:2m;R:2m;E:5m",
        daemon_name: str = "MTA",
    ) -> SendmailInstance:
        sm = cls(folder, root, port, relay_port)
        folder.mkdir(parents=True, exist_ok=True)
        sm.queue_dir.mkdir(mode=0o700, exist_ok=True)
        (folder / "aliases").write_text("")
        mc = sm.mc_text(milter=milter, milter_flags=milter_flags, daemon_name=daemon_name)
        (folder / "sendmail.mc").write_text(mc)
        result = subprocess.run(
            ["m4", str(folder / "sendmail.mc")], capture_output=True, check=False, timeout=60
        )
        if result.returncode != 0 or not result.stdout:
            raise RuntimeError(f"m4 failed: {result.stderr.decode(errors='replace')}")
        sm.cf.write_bytes(result.stdout)
        return sm

    def mc_text(self, *, milter: str | None, milter_flags: str, daemon_name: str) -> str:
        f = self.folder
        lines = [
            "divert(-1)",
            "divert(0)dnl",
            f"include(`{self.root / CF_DIR}/m4/cf.m4')dnl",
            "VERSIONID(`mailwarden test instance')dnl",
            "OSTYPE(`linux')dnl",
            f"define(`confDOMAIN_NAME', `{HOSTNAME}')dnl",
            "define(`confDONT_PROBE_INTERFACES', `True')dnl",
            f"define(`QUEUE_DIR', `{self.queue_dir}')dnl",
            f"define(`STATUS_FILE', `{f / 'sendmail.st'}')dnl",
            f"define(`confPID_FILE', `{f / 'sendmail.pid'}')dnl",
            f"define(`ALIAS_FILE', `{f / 'aliases'}')dnl",
            "define(`SMART_HOST', `esmtp:[127.0.0.1]')dnl",
            f"define(`ESMTP_MAILER_ARGS', `TCP $h {self.relay_port}')dnl",
            # deliver at once, and keep what fails in the queue for the test to see
            "define(`confDELIVERY_MODE', `background')dnl",
            "define(`confTO_QUEUEWARN', `4h')dnl",
            "define(`confMILTER_LOG_LEVEL', `6')dnl",
            f"DAEMON_OPTIONS(`Port={self.port}, Addr=127.0.0.1, Name={daemon_name}')dnl",
            "FEATURE(`no_default_msa')dnl",
            "FEATURE(`nocanonify')dnl",
            "FEATURE(`accept_unresolvable_domains')dnl",
            "RELAY_DOMAIN(`test.example remote.example')dnl",
        ]
        if milter:
            lines.append(f"INPUT_MAIL_FILTER(`mailwarden', `S={milter}, {milter_flags}')dnl")
        lines += ["MAILER(`local')dnl", "MAILER(`smtp')dnl", ""]
        return "\n".join(lines)

    def start(self) -> None:
        self.daemon = Daemon.start(
            [
                "unshare",
                "-u",
                "sh",
                "-c",
                f'hostname {HOSTNAME} && exec "$0" -C "$1" -bD -q30m',
                str(self.root / BINARY),
                str(self.cf),
            ],
            log=self.log_file,
            ports=[self.port],
            describe=self.output,
            cwd=self.folder,
        )

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
        self.daemon = None

    def queue(self) -> list[Path]:
        """Queue files (``qf*`` control files: one per queued message)."""
        return sorted(self.queue_dir.glob("qf*"))

    def output(self, limit: int = 4000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-limit:]
        except OSError:
            return ""
