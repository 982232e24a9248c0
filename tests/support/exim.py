"""A private Exim instance from Debian's packages, unpacked in its own root, for tests.

Debian's exim4 packages conflict with postfix, so Exim is not installed:
``exim4-daemon-heavy`` (the build with content scanning), ``exim4-base``
and ``exim4-config`` are fetched with ``apt-get download`` and unpacked with
``dpkg -x`` into a root of their own (:func:`exim_root`; ``scripts/bootstrap``
does it once for CI, with the binary's libraries and the ``Debian-exim``
user it was built to run as).  Each instance runs that binary with
``-C CONFIG``: its own spool, log and pid file, one loopback port::

    root = exim_root()                              # unpacked packages (or None)
    ex = EximInstance.create(tmp / "exim", root, port=..., relay_port=...,
                             av_scanner="clamd:/run/mailwarden/daemon.sock")
    ex.start()                                      # exim4 -C ... -bdf, by PID
    ex.stop()

Everything is relayed to ``[127.0.0.1]:relay_port`` (a sink in the test).
With ``av_scanner``, the DATA ACL denies what the ``malware`` condition
finds, and defers (451) when the scanner cannot be asked: the condition is
used without ``/defer_ok``.  With ``filter_port`` and ``return_port``, the
content-filter route is configured as well (docs/exim.md): mail not yet
received on ``return_port`` goes to ``mailwarden smtp-filter`` on
``filter_port``, which hands it back on ``return_port``.

SECURITY: test-only.  Needs root (Exim starts as root and runs as
Debian-exim); listens on 127.0.0.1 only and is stopped by its PID.
"""

from __future__ import annotations

import os
import pwd
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from support.private_root import Daemon, missing_libraries, read_logs, unpacked_root
from support.tools import missing

PACKAGES = ("exim4-daemon-heavy", "exim4-base", "exim4-config")
#: where the unpacked packages live unless $MAILWARDEN_EXIM_ROOT says otherwise: not below
#: a home folder, because Exim runs itself again as Debian-exim, which must reach the binary
DEFAULT_ROOT = Path("/var/cache/mailwarden-tests/exim-root")
BINARY = "usr/sbin/exim4"
#: the user Debian's exim4 is built to run as (EXIM_USER)
EXIM_USER = "Debian-exim"
HOSTNAME = "mx.test.example"
#: the files that tell what an instance did
LOGS = ("exim.out", "log/mainlog", "log/paniclog", "log/rejectlog")
#: a message id as ``exim -bp`` lists it (4.96: base-62 time, pid and fraction)
MESSAGE_ID = re.compile(r"\b[0-9A-Za-z]{6}-[0-9A-Za-z]{6}-[0-9A-Za-z]{2}\b")


def exim_root(*, fetch: bool = True) -> Path | None:
    """The unpacked packages, fetched and unpacked first when ``fetch`` and apt-get can."""
    return unpacked_root(
        DEFAULT_ROOT, "MAILWARDEN_EXIM_ROOT", PACKAGES, BINARY, fetch=fetch, shared=True
    )


def problems(root: Path) -> list[str]:
    """Why the unpacked binary cannot run here: missing libraries or user (bootstrap fixes)."""
    found = [f"library {name}" for name in missing_libraries(root / BINARY)]
    try:
        pwd.getpwnam(EXIM_USER)
    except KeyError:
        found.append(f"user {EXIM_USER}")
    return found


def as_exim_user(folder: Path, user: str) -> list[str]:
    """A command prefix: a private mount namespace in which Debian-exim is ``user``.

    Exim started with -C gives up root for deliveries and runs them as its
    compiled-in user; a transport's ``user =`` then works only for that user.
    The namespace's /etc/passwd and /etc/group (copies written to ``folder``)
    make Debian-exim ``user``, whether or not the machine has a Debian-exim.
    """
    owner = pwd.getpwnam(user)
    (folder / "passwd").write_text(
        _without("/etc/passwd", f"{EXIM_USER}:")
        + f"{EXIM_USER}:x:{owner.pw_uid}:{owner.pw_gid}::/nonexistent:/usr/sbin/nologin\n"
    )
    (folder / "group").write_text(
        _without("/etc/group", f"{EXIM_USER}:") + f"{EXIM_USER}:x:{owner.pw_gid}:\n"
    )
    script = (
        f"mount --bind {folder / 'passwd'} /etc/passwd && "
        f"mount --bind {folder / 'group'} /etc/group && "
        'exec "$@"'
    )
    return ["unshare", "-m", "sh", "-c", script, "exim"]


def _without(path: str, prefix: str) -> str:
    lines = Path(path).read_text().splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith(prefix))


def require_exim_root() -> Path:
    """The unpacked root, for tests that need Exim to run (fail under CI, else skip)."""
    if os.geteuid() != 0:
        missing("a private Exim needs root")
    root = exim_root()
    if root is None:
        missing("cannot unpack Debian's exim4-daemon-heavy (apt-get download)")
    trouble = problems(root)
    if trouble:
        missing(f"the unpacked Exim cannot run: missing {', '.join(trouble)} (scripts/bootstrap)")
    return root


@dataclass
class EximInstance:
    folder: Path
    root: Path
    port: int
    relay_port: int
    av_scanner: str | None = None
    filter_port: int | None = None
    return_port: int | None = None
    daemon: Daemon | None = None

    @classmethod
    def create(
        cls,
        folder: Path,
        root: Path,
        *,
        port: int,
        relay_port: int,
        av_scanner: str | None = None,
        filter_port: int | None = None,
        return_port: int | None = None,
    ) -> EximInstance:
        instance = cls(folder, root, port, relay_port, av_scanner, filter_port, return_port)
        user = pwd.getpwnam(EXIM_USER)
        for sub in ("spool", "log"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
            os.chown(folder / sub, user.pw_uid, user.pw_gid)
        instance.config.write_text(instance.config_text())
        return instance

    @property
    def config(self) -> Path:
        return self.folder / "exim4.conf"

    @property
    def spool(self) -> Path:
        return self.folder / "spool"

    def config_text(self) -> str:
        ports = [self.port] + ([self.return_port] if self.return_port else [])
        lines = [
            f"primary_hostname = {HOSTNAME}",
            # Exim runs itself again for deliveries and queue runs: not from /usr/sbin here
            f"exim_path = {self.root / BINARY}",
            "keep_environment =",
            "tls_advertise_hosts =",
            f"spool_directory = {self.spool}",
            f"log_file_path = {self.folder / 'log'}/%slog",
            f"pid_file_path = {self.folder / 'exim.pid'}",
            "local_interfaces = 127.0.0.1",
            f"daemon_smtp_ports = {' : '.join(str(p) for p in ports)}",
            "host_lookup =",
            "rfc1413_hosts =",
            "acl_smtp_rcpt = acl_check_rcpt",
            "acl_smtp_data = acl_check_data",
            "message_size_limit = 50M",
        ]
        if self.av_scanner:
            lines.append(f"av_scanner = {self.av_scanner}")
        data_acl = ["acl_check_data:"]
        if self.av_scanner:
            # no /defer_ok: a scanner that cannot be asked defers (451), never passes
            data_acl += [
                "  deny    malware = *",
                "          message = 5.7.1 Infected: $malware_name",
            ]
        data_acl.append("  accept")
        routers = ["begin routers", ""]
        if self.filter_port and self.return_port:
            # mail that has not come back from the filter goes to it first
            routers += [
                "to_mailwarden:",
                "  driver = manualroute",
                f"  condition = ${{if !={{$received_port}}{{{self.return_port}}}}}",
                f"  route_list = * 127.0.0.1::{self.filter_port} byname",
                "  self = send",
                "  transport = mailwarden_smtp",
                "",
            ]
        routers += [
            "to_sink:",
            "  driver = manualroute",
            f"  route_list = * 127.0.0.1::{self.relay_port} byname",
            "  self = send",
            "  transport = sink_smtp",
            "",
        ]
        transports = [
            "begin transports",
            "",
            "sink_smtp:",
            "  driver = smtp",
            "  allow_localhost",
            "",
            "mailwarden_smtp:",
            "  driver = smtp",
            "  allow_localhost",
            "  hosts_avoid_tls = *",
            # docs/exim.md: longer than the filter's scan and hand-back
            "  final_timeout = 810s",
            "",
        ]
        return "\n".join(
            [
                *lines,
                "",
                "begin acl",
                "",
                "acl_check_rcpt:",
                "  accept  hosts = 127.0.0.1",
                "  deny",
                "",
                *data_acl,
                "",
                *routers,
                *transports,
                "begin retry",
                "",
                "*   *   F,2h,1m",
                "",
            ]
        )

    def start(self, timeout: float = 30.0) -> None:
        self.daemon = Daemon.start(
            [str(self.root / BINARY), "-C", str(self.config), "-bdf", "-q30s"],
            log=self.folder / "exim.out",
            ports=[self.port, *filter(None, [self.return_port])],
            describe=self.output,
            timeout=timeout,
        )

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
        self.daemon = None

    def queue_run(self) -> None:
        """One queue run now (``-qff``): deferred mail is tried again."""
        subprocess.run(
            [str(self.root / BINARY), "-C", str(self.config), "-qff"],
            check=False,
            capture_output=True,
            timeout=120,
        )

    def queued(self) -> list[str]:
        """Ids of the messages in the queue (``-bp``; this Exim has no ``-bpi``)."""
        listing = subprocess.run(
            [str(self.root / BINARY), "-C", str(self.config), "-bp"],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if listing.returncode != 0:
            raise RuntimeError(f"exim -bp failed: {listing.stderr.strip()}")
        return MESSAGE_ID.findall(listing.stdout)

    def output(self, limit: int = 4000) -> str:
        return read_logs(self.folder, LOGS, limit)
