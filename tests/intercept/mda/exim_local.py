"""A private Exim whose router hands local mail to a pipe transport (docs/mda.md's recipe).

Usage::

    ex = LocalExim.create(tmp / "exim", exim_root(), port=..., relay_port=...,
                          local_domain="mda.example", routers=..., transports=...)
    ex.start(); ex.queue(); ex.run_queue(); ex.mainlog(); ex.stop()

The unpacked Debian packages come from ``support.exim.exim_root``.  Exim
looks up its compiled-in user ``Debian-exim`` before reading any
configuration: every command runs in a private mount namespace
(``unshare -m``) whose /etc/passwd and /etc/group are copies in which that
user is ``nobody``, whether or not the machine has a ``Debian-exim``.  Exim started with
``-C`` gives up root in the processes it re-executes, so deliveries run as
``nobody`` (who owns the spool and logs here) and the pipe transport uses
``user = nobody``.  Mail for other domains goes to ``127.0.0.1:relay_port``.

SECURITY: test-only.  Needs root (namespaces and bind mounts vanish with the
process); listens on 127.0.0.1 only and is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from support.exim import as_exim_user
from support.private_root import Daemon
from support.private_root import missing_libraries as _missing_libraries

BINARY = "usr/sbin/exim4"
MAIL_USER = "nobody"


def missing_libraries(root: Path) -> list[str]:
    return _missing_libraries(root / BINARY)


@dataclass
class LocalExim:
    folder: Path
    root: Path
    port: int
    daemon: Daemon | None = None
    #: the command prefix that makes Debian-exim the mail user (support.exim.as_exim_user)
    namespace: list[str] = field(default_factory=list)

    @property
    def conf(self) -> Path:
        return self.folder / "exim.conf"

    @property
    def spool(self) -> Path:
        return self.folder / "spool"

    @classmethod
    def create(
        cls,
        folder: Path,
        root: Path,
        *,
        port: int,
        relay_port: int,
        local_domain: str,
        routers: str,
        transports: str,
    ) -> LocalExim:
        """An instance whose ``routers`` come first and whose ``transports`` are added."""
        ex = cls(folder, root, port)
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)
        user = pwd.getpwnam(MAIL_USER)
        for sub in ("spool", "log"):
            (folder / sub).mkdir(exist_ok=True)
            os.chown(folder / sub, user.pw_uid, user.pw_gid)
        # Debian-exim is nobody here, whether or not the machine has that user
        ex.namespace = as_exim_user(folder, MAIL_USER)
        ex.conf.write_text(ex.config_text(relay_port, local_domain, routers, transports))
        return ex

    def config_text(self, relay_port: int, domain: str, routers: str, transports: str) -> str:
        f = self.folder
        return f"""\
exim_path = {self.root / BINARY}
exim_user = {MAIL_USER}
never_users =
keep_environment =
spool_directory = {f / "spool"}
log_file_path = {f / "log"}/%slog
primary_hostname = mx.{domain}
domainlist local_domains = {domain}
daemon_smtp_ports = {self.port}
local_interfaces = 127.0.0.1
tls_advertise_hosts =
acl_smtp_rcpt = acl_check_rcpt
host_lookup =

begin acl
acl_check_rcpt:
  accept hosts = 127.0.0.1

begin routers
{routers}
remote:
  driver = manualroute
  domains = ! +local_domains
  transport = remote_smtp
  route_list = * 127.0.0.1 byname
  self = send

begin transports
{transports}
remote_smtp:
  driver = smtp
  port = {relay_port}
  hosts_avoid_tls = *

begin retry
*   *   F,1h,1m
"""

    def _command(self, *args: str) -> list[str]:
        binary = str(self.root / BINARY)
        return [*self.namespace, binary, "-C", str(self.conf), *args]

    def start(self) -> None:
        self.daemon = Daemon.start(
            self._command("-bdf", "-q30m"),
            log=self.folder / "exim.out",
            ports=[self.port],
            describe=self.mainlog,
            cwd=self.folder,
        )

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
        self.daemon = None

    def queue(self) -> list[Path]:
        """Header files of queued messages (one per message)."""
        return sorted((self.spool / "input").rglob("*-H"))

    def run_queue(self) -> None:
        """One forced queue run (``-qff``), waiting for it to finish."""
        subprocess.run(self._command("-qff"), check=True, capture_output=True, timeout=120)

    def mainlog(self, limit: int = 6000) -> str:
        parts = []
        for name in ("mainlog", "paniclog"):
            with contextlib.suppress(OSError):
                parts.append((self.folder / "log" / name).read_text(errors="replace"))
        return "\n".join(parts)[-limit:]
