"""A private Postfix instance from Debian's package, for end-to-end tests.

Usage::

    pf = PostfixInstance.create(root, filter_port=..., lmtp_filter_port=...,
                                proxy_port=..., relay_port=...)
    pf.start()
    pf.ports["filtered"]            # SMTP in, content_filter to the filter (SMTP)
    pf.ports["filtered_lmtp"]       # SMTP in, content_filter to the filter (LMTP)
    pf.ports["proxied"]             # SMTP in, smtpd_proxy_filter to the proxy
    pf.ports["reinject"]            # the re-injection / after-filter smtpd (no filter)
    pf.mailbox("alice")             # messages delivered to alice@test.example
    pf.queue()                      # postqueue -j, one dict per queued message
    pf.flush(); pf.stop()

The instance has its own configuration folder (``postfix -c DIR``), queue,
data folder and log file (``maillog``), listens on loopback only, delivers
``test.example`` into virtual Maildirs under ``root/mail`` (owned by
``nobody``), and relays ``remote.example`` to ``relay_port`` (a sink in the
test).  The services follow FILTER_README (a ``scan`` transport with
XFORWARD, a re-injection smtpd with no filter) and SMTPD_PROXY_README.
Retries are slow (minimal backoff 5 minutes), so a deferred message stays
deferred until :meth:`flush`.

SECURITY: test-only.  Must run as root (Postfix's master starts as root and
drops to ``postfix``); everything listens on 127.0.0.1 and is stopped by
``postfix stop`` and, failing that, by the master's PID.
"""

from __future__ import annotations

import contextlib
import email
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from email.message import Message as EmailMessage
from pathlib import Path

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
DOMAIN = "test.example"
REMOTE = "remote.example"
USERS = ("alice", "bob", "carol")

_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


@dataclass
class PostfixInstance:
    root: Path
    ports: dict[str, int]
    relay_port: int
    started: bool = field(default=False)

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    @property
    def queue_dir(self) -> Path:
        return self.root / "spool"

    @property
    def mail_dir(self) -> Path:
        return self.root / "mail"

    @property
    def log_file(self) -> Path:
        return self.root / "maillog"

    @classmethod
    def create(
        cls,
        root: Path,
        *,
        smtp_port: int,
        filtered_lmtp_port: int,
        proxied_port: int,
        reinject_port: int,
        filter_port: int,
        lmtp_filter_port: int,
        proxy_port: int,
        relay_port: int,
    ) -> PostfixInstance:
        pf = cls(
            root,
            {
                "filtered": smtp_port,
                "filtered_lmtp": filtered_lmtp_port,
                "proxied": proxied_port,
                "reinject": reinject_port,
                "filter": filter_port,
                "lmtp_filter": lmtp_filter_port,
                "proxy": proxy_port,
            },
            relay_port,
        )
        pf._write_config()
        return pf

    @classmethod
    def create_on_free_ports(cls, root: Path, *, relay_port: int) -> PostfixInstance:
        """:meth:`create` with every port a free one of 127.0.0.1 (see ``ports``)."""
        free = {}
        for name in ("smtp", "lmtp", "proxied", "reinject", "filter", "lmtp_filter", "proxy"):
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                free[name] = int(probe.getsockname()[1])
        return cls.create(
            root,
            smtp_port=free["smtp"],
            filtered_lmtp_port=free["lmtp"],
            proxied_port=free["proxied"],
            reinject_port=free["reinject"],
            filter_port=free["filter"],
            lmtp_filter_port=free["lmtp_filter"],
            proxy_port=free["proxy"],
            relay_port=relay_port,
        )

    def _write_config(self) -> None:
        # the postfix and nobody users must reach their folders below the root
        # (and the caller must leave the root's parents searchable)
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        for d in (self.config_dir, self.queue_dir, self.root / "data"):
            d.mkdir(parents=True, exist_ok=True)
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        os.chown(self.mail_dir, 65534, 65534)
        shutil.chown(self.root / "data", "postfix", "postfix")
        (self.config_dir / "vmailbox").write_text("".join(f"{u}@{DOMAIN} {u}/\n" for u in USERS))
        (self.config_dir / "transport").write_text(f"{REMOTE} smtp:[127.0.0.1]:{self.relay_port}\n")
        p = self.ports
        main = {
            "compatibility_level": "3.6",
            "config_directory": str(self.config_dir),
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.root / "data"),
            "maillog_file": str(self.log_file),
            "maillog_file_prefixes": str(self.root),
            "syslog_name": "postfix-mwtest",
            "myhostname": f"mx.{DOMAIN}",
            "mydomain": DOMAIN,
            "myorigin": "$mydomain",
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "virtual_mailbox_domains": DOMAIN,
            "virtual_mailbox_base": str(self.mail_dir),
            "virtual_mailbox_maps": f"texthash:{self.config_dir / 'vmailbox'}",
            "virtual_uid_maps": "static:65534",
            "virtual_gid_maps": "static:65534",
            "transport_maps": f"texthash:{self.config_dir / 'transport'}",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "biff": "no",
            "append_dot_mydomain": "no",
            "smtputf8_enable": "yes",
            "smtp_dns_support_level": "disabled",
            "lmtp_dns_support_level": "disabled",
            "queue_run_delay": "300s",
            "minimal_backoff_time": "300s",
            "maximal_backoff_time": "600s",
            "message_size_limit": "20000000",
            "smtpd_authorized_xforward_hosts": "127.0.0.0/8",
            "smtp_connection_cache_on_demand": "no",
            "lmtp_connection_cache_on_demand": "no",
            "shlib_directory": "/usr/lib/postfix",
        }
        (self.config_dir / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        clear = (
            "  -o smtpd_client_restrictions=\n  -o smtpd_helo_restrictions=\n"
            "  -o smtpd_sender_restrictions=\n"
        )
        master = _SERVICES.replace("1000?", "1000")
        master += (
            f"127.0.0.1:{p['filtered']} inet n - n - - smtpd\n"
            f"  -o content_filter=scan:[127.0.0.1]:{p['filter']}\n"
            f"127.0.0.1:{p['filtered_lmtp']} inet n - n - - smtpd\n"
            f"  -o content_filter=scanlmtp:[127.0.0.1]:{p['lmtp_filter']}\n"
            f"127.0.0.1:{p['proxied']} inet n - n - - smtpd\n"
            f"  -o smtpd_proxy_filter=127.0.0.1:{p['proxy']}\n"
            "  -o smtpd_proxy_timeout=120s\n"
            f"127.0.0.1:{p['reinject']} inet n - n - - smtpd\n"
            "  -o content_filter=\n"
            "  -o receive_override_options=no_unknown_recipient_checks,"
            "no_header_body_checks,no_milters\n"
            f"{clear}"
            "  -o smtpd_recipient_restrictions=permit_mynetworks,reject\n"
            "  -o smtpd_data_restrictions=\n"
            "  -o mynetworks=127.0.0.0/8\n"
            "  -o smtpd_authorized_xforward_hosts=127.0.0.0/8\n"
            "scan unix - - n - 10 smtp\n"
            "  -o smtp_send_xforward_command=yes\n"
            "  -o disable_mime_output_conversion=yes\n"
            "  -o smtp_generic_maps=\n"
            "scanlmtp unix - - n - 10 lmtp\n"
            "  -o lmtp_send_xforward_command=yes\n"
            "  -o disable_mime_output_conversion=yes\n"
        )
        (self.config_dir / "master.cf").write_text(master)

    # --- life cycle -------------------------------------------------------------------

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=120)

    def start(self) -> None:
        self._run(POSTFIX, "-c", str(self.config_dir), "set-permissions", check=False)
        result = self._run(POSTFIX, "-c", str(self.config_dir), "start", check=False)
        if result.returncode != 0:
            raise RuntimeError(f"postfix start failed: {result.stdout}{result.stderr}")
        self.started = True
        deadline = time.monotonic() + 30
        while not _port_open(self.ports["filtered"]):
            if time.monotonic() > deadline:
                raise RuntimeError(f"postfix did not listen: {self.log_tail()}")
            time.sleep(0.1)

    def master_pid(self) -> int | None:
        pid_file = self.queue_dir / "pid" / "master.pid"
        try:
            return int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        if not self.started:
            return
        pid = self.master_pid()
        self._run(POSTFIX, "-c", str(self.config_dir), "stop", check=False)
        deadline = time.monotonic() + 20
        while pid is not None and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid is not None and _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.started = False

    # --- queue and mailboxes ------------------------------------------------------------

    def queue(self) -> list[dict[str, object]]:
        result = self._run("postqueue", "-c", str(self.config_dir), "-j")
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]

    def delete(self, queue_id: str) -> None:
        self._run("postsuper", "-c", str(self.config_dir), "-d", queue_id)

    def flush(self) -> None:
        self._run("postqueue", "-c", str(self.config_dir), "-f")

    def mailbox(self, user: str) -> list[EmailMessage]:
        """Messages in ``user``'s Maildir (new/ and cur/), oldest first."""
        box = self.mail_dir / user
        files: list[Path] = []
        for sub in ("new", "cur"):
            if (box / sub).is_dir():
                files.extend(p for p in (box / sub).iterdir() if p.is_file())
        files.sort(key=lambda p: p.stat().st_mtime_ns)
        return [email.message_from_bytes(p.read_bytes()) for p in files]

    def log_tail(self, limit: int = 6000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-limit:]
        except OSError:
            return "(no maillog)"


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_until(predicate: object, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``predicate()`` until true; fail with ``what`` when it never is."""
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


# --- milter (smtpd_milters, non_smtpd_milters) ---------------------------------------


def add_milter_service(
    pf: PostfixInstance, *, port: int, milter: str, default_action: str = "tempfail"
) -> None:
    """Before :meth:`PostfixInstance.start`: an smtpd on ``port`` whose mail goes through
    ``milter`` (Postfix's notation: ``unix:/PATH`` or ``inet:HOST:PORT``), and the same
    milter for locally submitted mail (``non_smtpd_milters``), as docs/milter.md says.

    ``pf.ports["milter"]`` is the new port.  ``milter_default_action`` applies when the
    milter cannot be reached: ``tempfail`` keeps the mail with the client.
    """
    main = pf.config_dir / "main.cf"
    main.write_text(
        main.read_text()
        + f"non_smtpd_milters = {milter}\n"
        + f"milter_default_action = {default_action}\n"
        + "milter_protocol = 6\n"
        + "milter_connect_timeout = 10s\n"
    )
    master = pf.config_dir / "master.cf"
    master.write_text(
        master.read_text()
        + f"127.0.0.1:{port} inet n - n - - smtpd\n"
        + f"  -o smtpd_milters={milter}\n"
        + "  -o content_filter=\n"
    )
    pf.ports["milter"] = port


def submit_local(pf: PostfixInstance, raw: bytes, sender: str, recipients: list[str]) -> None:
    """Submit ``raw`` with Postfix's sendmail command (pickup, then non_smtpd_milters)."""
    subprocess.run(
        ["/usr/sbin/sendmail", "-C", str(pf.config_dir), "-f", sender, "--", *recipients],
        input=raw,
        check=True,
        capture_output=True,
        timeout=60,
    )


def milter_instance(root: Path, *, relay_port: int, milters: dict[str, str]) -> PostfixInstance:
    """A new instance on free ports with one milter smtpd per entry of ``milters``
    (name -> milter address); ``pf.ports[name]`` is that smtpd's port."""
    import socket

    def free() -> int:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return int(probe.getsockname()[1])

    names = ("smtp", "filtered_lmtp", "proxied", "reinject", "filter", "lmtp_filter", "proxy")
    pf = PostfixInstance.create(
        root,
        **{f"{name}_port": free() for name in names},
        relay_port=relay_port,
    )
    for name, address in milters.items():
        add_milter_service(pf, port=free(), milter=address)
        pf.ports[name] = pf.ports.pop("milter")
    return pf
