"""A Postfix site built from Debian's stock configuration, for the setup tests.

Usage::

    site = PostfixSite.create(root)         # /etc/postfix copied, made private
    site.snapshot()                          # {relative path: (bytes, mode)} of the folder
    site.start(); site.smtp_port; site.mailbox("alice"); site.stop()

The folder starts as a copy of the installed ``/etc/postfix`` (Debian's
``master.cf``) with Debian's stock ``main.cf`` (``/usr/share/postfix/
main.cf.debian``, what the package installs when asked for a configuration).
Then only what a private instance on a shared test machine needs is changed,
with ``postconf`` as an administrator would: its own queue, data folder and
log, loopback only, the public ``smtp`` service moved to a free port (named
``127.0.0.1:PORT``), no chroot (the queue folder is a temporary one), and
delivery of ``test.example`` into virtual Maildirs owned by ``nobody``
(``local.example`` goes to local(8), whose ``mailbox_command`` is procmail
writing to ``root/local-mail``).  Setup runs on that, so what it changes is
exactly what a real site would see changed.

SECURITY: test-only.  Must run as root (Postfix's master starts as root);
listens on 127.0.0.1 only and is stopped by ``postfix stop`` and the PID.
"""

from __future__ import annotations

import email
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from email.message import Message as EmailMessage
from pathlib import Path

from intercept.harness import free_port
from support.postfix import PostfixInstance

STOCK_DIR = Path("/etc/postfix")
STOCK_MAIN = Path("/usr/share/postfix/main.cf.debian")
DOMAIN = "test.example"
LOCAL_DOMAIN = "local.example"
USERS = ("alice", "bob")
NOBODY = 65534


def _postconf(config_dir: Path, *args: str) -> None:
    subprocess.run(
        ["postconf", "-c", str(config_dir), *args], check=True, capture_output=True, timeout=60
    )


@dataclass
class PostfixSite:
    root: Path
    smtp_port: int
    _instance: PostfixInstance | None = field(default=None, repr=False)

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    @property
    def local_mail(self) -> Path:
        return self.root / "local-mail"

    @classmethod
    def create(cls, root: Path) -> PostfixSite:
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        site = cls(root, free_port())
        etc = site.config_dir
        shutil.copytree(STOCK_DIR, etc, symlinks=True)
        if not (etc / "main.cf").exists():
            shutil.copyfile(STOCK_MAIN, etc / "main.cf")
        for sub in ("spool", "data"):
            (root / sub).mkdir()
        shutil.chown(root / "data", "postfix", "postfix")
        (root / "mail").mkdir()
        os.chown(root / "mail", NOBODY, NOBODY)
        site.local_mail.mkdir()
        os.chown(site.local_mail, NOBODY, NOBODY)
        (etc / "vmailbox").write_text("".join(f"{u}@{DOMAIN} {u}/\n" for u in USERS))
        _postconf(
            etc,
            "-e",
            f"config_directory={etc}",
            f"queue_directory={root / 'spool'}",
            f"data_directory={root / 'data'}",
            f"maillog_file={root / 'maillog'}",
            f"maillog_file_prefixes={root}",
            "syslog_name=postfix-mwsetup",
            f"myhostname=mx.{DOMAIN}",
            f"mydomain={DOMAIN}",
            f"mydestination={LOCAL_DOMAIN}",
            "inet_interfaces=127.0.0.1",
            "inet_protocols=ipv4",
            "mynetworks=127.0.0.0/8",
            "alias_maps=",
            "alias_database=",
            "smtp_dns_support_level=disabled",
            "lmtp_dns_support_level=disabled",
            f"virtual_mailbox_domains={DOMAIN}",
            f"virtual_mailbox_base={root / 'mail'}",
            f"virtual_mailbox_maps=texthash:{etc / 'vmailbox'}",
            f"virtual_uid_maps=static:{NOBODY}",
            f"virtual_gid_maps=static:{NOBODY}",
            "recipient_delimiter=+",
            f'mailbox_command=/usr/bin/procmail -a "$EXTENSION" DEFAULT={site.local_mail}/',
            "queue_run_delay=300s",
            "minimal_backoff_time=300s",
            "maximal_backoff_time=600s",
        )
        _postconf(etc, "-F", "*/*/chroot=n")
        public = f"127.0.0.1:{site.smtp_port}"
        _postconf(etc, "-M", f"{public}/inet={public} inet n - n - - smtpd")
        _postconf(etc, "-MX", "smtp/inet")
        # as Postfix's start would: the modes setup then records are the final ones
        subprocess.run(
            ["postfix", "-c", str(etc), "set-permissions"],
            capture_output=True,
            timeout=120,
            check=False,
        )
        return site

    @property
    def smtp_service(self) -> str:
        return f"127.0.0.1:{self.smtp_port}"

    def snapshot(self) -> dict[str, tuple[bytes, int]]:
        """Every file of the configuration folder: its bytes and its mode."""
        return {
            str(p.relative_to(self.config_dir)): (p.read_bytes(), p.stat().st_mode)
            for p in sorted(self.config_dir.rglob("*"))
            if p.is_file() and not p.is_symlink()
        }

    @property
    def instance(self) -> PostfixInstance:
        """The test harness's view of this instance: the same folders, started and
        stopped the same way (by ``postfix stop`` and the master's PID)."""
        if self._instance is None:
            self._instance = PostfixInstance(self.root, {"filtered": self.smtp_port}, 0)
        return self._instance

    def start(self) -> None:
        self.instance.start()

    def stop(self) -> None:
        self.instance.stop()

    def mailbox(self, user: str) -> list[EmailMessage]:
        return self.instance.mailbox(user)

    def local_mailbox(self) -> list[EmailMessage]:
        return _maildir(self.local_mail)

    def log(self) -> str:
        return self.instance.log_tail()


def _maildir(box: Path) -> list[EmailMessage]:
    files = [p for sub in ("new", "cur") if (box / sub).is_dir() for p in (box / sub).iterdir()]
    files.sort(key=lambda p: p.stat().st_mtime_ns)
    return [email.message_from_bytes(p.read_bytes()) for p in files if p.is_file()]
