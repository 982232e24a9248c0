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

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

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
    configured = os.environ.get("MAILWARDEN_SENDMAIL_ROOT")
    root = Path(configured) if configured else DEFAULT_ROOT
    if (root / BINARY).exists():
        return root
    if not fetch or shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        return None
    try:
        unpack(root)
    except (OSError, subprocess.SubprocessError):
        return None
    return root if (root / BINARY).exists() else None


def unpack(root: Path) -> None:
    """``apt-get download`` the packages and ``dpkg -x`` them into ``root``."""
    with tempfile.TemporaryDirectory(prefix="mw-sendmail-debs-") as tmp:
        subprocess.run(
            ["apt-get", "download", "-q", *PACKAGES],
            cwd=tmp,
            check=True,
            capture_output=True,
            timeout=300,
        )
        staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=_parent(root)))
        for deb in sorted(Path(tmp).glob("*.deb")):
            subprocess.run(["dpkg", "-x", str(deb), str(staging)], check=True, timeout=120)
        # one rename: a half-unpacked root is never seen by another run
        if root.exists():
            shutil.rmtree(staging)
        else:
            staging.rename(root)


def _parent(root: Path) -> Path:
    root.parent.mkdir(parents=True, exist_ok=True)
    return root.parent


def missing_libraries(root: Path) -> list[str]:
    """Shared libraries the binary cannot find (installed by bootstrap: libwrap0, ...)."""
    out = subprocess.run(
        ["ldd", str(root / BINARY)], capture_output=True, text=True, check=False
    ).stdout
    return [line.split()[0] for line in out.splitlines() if "not found" in line]


@dataclass
class SendmailInstance:
    folder: Path
    root: Path
    port: int
    relay_port: int
    process: subprocess.Popen[bytes] | None = None

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
        log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self.process = subprocess.Popen(
                [
                    "unshare",
                    "-u",
                    "sh",
                    "-c",
                    f'hostname {HOSTNAME} && exec "$0" -C "$1" -bD -q30m',
                    str(self.root / BINARY),
                    str(self.cf),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
            )
        finally:
            log.close()
        deadline = time.monotonic() + 30
        while not _port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sendmail did not listen: {self.output()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None

    def queue(self) -> list[Path]:
        """Queue files (``qf*`` control files: one per queued message)."""
        return sorted(self.queue_dir.glob("qf*"))

    def output(self, limit: int = 4000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-limit:]
        except OSError:
            return ""


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0
