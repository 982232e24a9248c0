"""A private Dovecot (Debian's dovecot-imapd and dovecot-pop3d) for the download-proxy tests.

Usage::

    dovecot = DovecotInstance.create(root, users={"alice": "secret"}, tls=certs)
    dovecot.deliver("alice", raw_bytes)            # into alice's Maildir INBOX (new/)
    dovecot.start()                                # `dovecot -c FILE`, own ports on 127.0.0.1
    dovecot.ports["imap"], dovecot.ports["pop3s"]  # plain and implicit-TLS listeners
    dovecot.stop()                                 # by PID

:func:`proxy_rig` adds mailwarden's daemon and a download proxy in front.

Everything lives below ``root``: its own base_dir, state, log, a passwd-file
of test users and their Maildirs, owned by the unprivileged ``mail_uid`` the
users run as.  :func:`make_certs` writes a CA and a server certificate for
``localhost``/``127.0.0.1`` with openssl, for TLS on both sides of a proxy.

SECURITY: test-only.  Needs root (Dovecot drops to its login and mail users);
listens on loopback only; stopped by the PID Dovecot writes.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DOVECOT = "/usr/sbin/dovecot"


def available() -> str | None:
    """Why a private Dovecot cannot run here, or None when it can."""
    if not Path(DOVECOT).exists():
        return "dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d)"
    for binary in ("imap", "pop3"):
        if not Path(f"/usr/lib/dovecot/{binary}").exists():
            return f"dovecot's {binary} is missing (apt-get install dovecot-{binary}d)"
    if os.geteuid() != 0:
        return "a private Dovecot needs root"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True, slots=True)
class Certs:
    ca: Path
    cert: Path
    key: Path


def make_certs(folder: Path, name: str = "localhost") -> Certs:
    """A CA and a certificate it signed for ``name`` and 127.0.0.1 (openssl)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (
        folder / f"{n}" for n in ("ca.key", "ca.pem", f"{name}.key", f"{name}.csr", f"{name}.pem")
    )
    ext = folder / f"{name}.ext"
    ext.write_text(f"subjectAltName=DNS:{name},IP:127.0.0.1\n")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    if not ca.exists():
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key),
                "-out", str(ca), "-days", "2", "-subj", "/CN=mailwarden test CA")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
            "-subj", f"/CN={name}")  # fmt: skip
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))  # fmt: skip
    key.chmod(0o644)  # Dovecot reads it as root; the proxy under test as whoever runs it
    return Certs(ca, cert, key)


@dataclass
class DovecotInstance:
    root: Path
    users: dict[str, str]
    ports: dict[str, int]
    mail_uid: int
    mail_gid: int
    certs: Certs | None = None
    _started: bool = field(default=False, repr=False)

    @classmethod
    def create(
        cls, root: Path, *, users: dict[str, str], certs: Certs | None = None
    ) -> DovecotInstance:
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        nobody = pwd.getpwnam("nobody")
        ports = {k: _free_port() for k in ("imap", "imaps", "pop3", "pop3s")}
        inst = cls(root, dict(users), ports, nobody.pw_uid, nobody.pw_gid, certs)
        inst._write_config()
        for user in users:
            inst.maildir(user)
        return inst

    @property
    def config(self) -> Path:
        return self.root / "dovecot.conf"

    def maildir(self, user: str) -> Path:
        base = self.root / "mail" / user
        for sub in ("cur", "new", "tmp"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        for path in (self.root / "mail", base, *(base / s for s in ("cur", "new", "tmp"))):
            os.chown(path, self.mail_uid, self.mail_gid)
        return base

    def deliver(self, user: str, raw: bytes, *, name: str | None = None) -> Path:
        """Put ``raw`` (LF line ends, as Maildir keeps them) into ``user``'s new/."""
        base = self.maildir(user)
        name = name or f"{time.time_ns()}.P{os.getpid()}.mwtest"
        path = base / "new" / name
        path.write_bytes(raw.replace(b"\r\n", b"\n"))
        os.chown(path, self.mail_uid, self.mail_gid)
        return path

    def _write_config(self) -> None:
        root = self.root
        (root / "run").mkdir(exist_ok=True)
        (root / "state").mkdir(exist_ok=True)
        passwd = root / "passwd"
        home = root / "home"
        home.mkdir(exist_ok=True)
        passwd.write_text(
            "".join(
                f"{u}:{{PLAIN}}{p}:{self.mail_uid}:{self.mail_gid}::{home / u}::\n"
                for u, p in self.users.items()
            )
        )
        tls = (
            f"ssl = yes\nssl_cert = <{self.certs.cert}\nssl_key = <{self.certs.key}\n"
            if self.certs
            else "ssl = no\n"
        )
        p = self.ports
        imaps = f"inet_listener imaps {{\n    port = {p['imaps']}\n    ssl = yes\n  }}\n"
        pop3s = f"inet_listener pop3s {{\n    port = {p['pop3s']}\n    ssl = yes\n  }}\n"
        self.config.write_text(
            f"""\
base_dir = {root / "run"}
state_dir = {root / "state"}
log_path = {root / "dovecot.log"}
instance_name = mwtest-{p["imap"]}
protocols = imap pop3
listen = 127.0.0.1
{tls}disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:{root / "mail"}/%u
mail_fsync = never
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {passwd}
}}
service imap-login {{
  inet_listener imap {{
    port = {p["imap"]}
  }}
  {imaps if self.certs else ""}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {p["pop3"]}
  }}
  {pop3s if self.certs else ""}
}}
service anvil {{
  chroot =
}}
protocol imap {{
  # Dovecot allows 10 connections per user and address by default; a load
  # test opens more than that for one user
  mail_max_userip_connections = 200
}}
"""
        )

    def start(self) -> None:
        subprocess.run([DOVECOT, "-c", str(self.config)], check=True, timeout=60)
        self._started = True
        deadline = time.monotonic() + 30
        for port in (self.ports["imap"], self.ports["pop3"]):
            while True:
                with socket.socket() as probe:
                    probe.settimeout(0.5)
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"dovecot did not listen: {self.log()}")
                time.sleep(0.05)

    def pid(self) -> int | None:
        try:
            return int((self.root / "run" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        pid = self.pid()
        if not self._started or pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._started = False

    def log(self) -> str:
        try:
            return (self.root / "dovecot.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# --- the mail the download-proxy tests seed -------------------------------------------

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def clean_message(n: int, *, body: bytes = b"") -> bytes:
    """A plain message whose body has a line starting with a dot (dot-stuffing)."""
    return (
        b"From: Sender %d <sender%d@example.net>\n"
        b"To: user@example.org\n"
        b"Subject: clean message %d\n"
        b"Date: Fri, 27 Nov 2026 10:00:00 +0000\n"
        b"Message-ID: <clean-%d@example.net>\n"
        b"\n"
        b"Hello, message %d.\n"
        b".a line that starts with a dot\n"
        b"..and one with two\n" % (n, n, n, n, n)
    ) + (body or b"The end.\n")


def infected_message(n: int) -> bytes:
    """A multipart message with EICAR as a base64 attachment, padded to a size the
    warning fits in."""
    import base64

    payload = base64.encodebytes(EICAR).replace(b"\n", b"\n")
    filler = b"".join(b"Line %03d of the text part, to give the message some size.\n" % i
                      for i in range(30))  # fmt: skip
    return (
        b"From: Mallory <mallory@example.net>\n"
        b"To: user@example.org\n"
        b"Subject: infected message %d\n"
        b"Date: Fri, 27 Nov 2026 11:00:00 +0000\n"
        b"Message-ID: <infected-%d@example.net>\n"
        b"MIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="b1"\n'
        b"\n"
        b"--b1\n"
        b"Content-Type: text/plain\n"
        b"\n" + filler + b"--b1\n"
        b'Content-Type: application/octet-stream; name="eicar.com"\n'
        b"Content-Transfer-Encoding: base64\n"
        b'Content-Disposition: attachment; filename="eicar.com"\n'
        b"\n" + payload + b"--b1--\n"
    ) % (n, n)


def tiny_infected_message() -> bytes:
    """EICAR as the whole body of a message too small for the warning's usual size."""
    return b"Subject: tiny\nMessage-ID: <tiny@example.net>\n\n" + EICAR + b"\n"


# --- a private Dovecot with mailwarden's daemon and one download proxy in front -----------

PASSWORD = "secret"  # noqa: S105 - a test user of the private Dovecot
DOMAIN = "example.org"
USERS = ("alice", "bob", "carol", "dave", "erin", "frank")


def login(name: str) -> str:
    return f"{name}@{DOMAIN}"


@dataclass
class ProxyRig:
    """Dovecot, the daemon and ``mailwarden KIND-proxy`` (``stack`` is the agent tests'
    ``intercept.harness.Stack``)."""

    dovecot: DovecotInstance
    stack: Any
    certs: Certs
    kind: str
    port: int
    tls_port: int

    @property
    def direct(self) -> int:
        return self.dovecot.ports[self.kind]

    def extra_proxy(
        self, name: str, *, daemon_socket: str, changes: dict[str, str] | None = None
    ) -> int:
        """Another proxy on the same Dovecot with some keys of its section changed (no
        TLS listener: the main proxy holds that port); returns its port."""
        text = self.stack.config.read_text()
        for old, new in {
            f'listen_tls = "127.0.0.1:{self.tls_port}"': 'listen_tls = ""',
            **(changes or {}),
        }.items():
            if old not in text:
                raise AssertionError(f"{old!r} is not in the configuration")
            text = text.replace(old, new)
        config = self.stack.root / f"{name}.toml"
        config.write_text(text)
        port = _free_port()
        args = [f"{self.kind}-proxy", "-c", str(config), "--listen", f"127.0.0.1:{port}",
                "--daemon-socket", daemon_socket]  # fmt: skip
        proc = self.stack._spawn(name, args)
        deadline = time.monotonic() + 30
        while not _listening(port):
            if proc.popen.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{name} did not start: {proc.output()}")
            time.sleep(0.05)
        return port


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def seed(dovecot: DovecotInstance, user: str) -> None:
    """Mailbox order: clean 1, infected 1, clean 2, tiny infected, clean 3 (no final
    line end)."""
    for i, raw in enumerate(
        [clean_message(1), infected_message(1), clean_message(2), tiny_infected_message(),
         clean_message(3, body=b"no final line end")]
    ):  # fmt: skip
        dovecot.deliver(login(user), raw, name=f"{1000 + i}.M{i}.mwtest")


@contextlib.contextmanager
def proxy_rig(kind: str, stack_factory: Callable[[Path, str], Any]) -> Iterator[ProxyRig]:
    """Dovecot with every test user's Maildir seeded and TLS (its own CA), the daemon,
    and ``mailwarden KIND-proxy`` with STARTTLS/STLS to Dovecot (verified against the
    test CA) and its own certificate towards clients.  ``bob@example.org`` has a
    per-user policy: infected mail is tagged instead of replaced."""
    root = Path(tempfile.mkdtemp(prefix=f"mw{kind}-"))
    root.chmod(0o755)
    certs = make_certs(root / "certs")
    dovecot = DovecotInstance.create(
        root / "dovecot", users={login(u): PASSWORD for u in USERS}, certs=certs
    )
    for user in USERS:
        seed(dovecot, user)
    port, tls_port = _free_port(), _free_port()
    stack = stack_factory(
        root / "mw",
        f"""
[[policy.override]]
recipients = ["bob@{DOMAIN}"]
infected = "tag"

[{kind}_proxy]
server = "127.0.0.1:{dovecot.ports[kind]}"
server_tls = "starttls"
server_ca_file = "{certs.ca}"
server_name = "localhost"
tls_cert = "{certs.cert}"
tls_key = "{certs.key}"
listen_tls = "127.0.0.1:{tls_port}"
hostname = "gw.{DOMAIN}"
""",
    )
    try:
        dovecot.start()
        stack.start_daemon()
        stack.start_agent(kind, f"{kind}-proxy", port)
        yield ProxyRig(dovecot, stack, certs, kind, port, tls_port)
    finally:
        stack.stop_all()
        dovecot.stop()
    if not os.environ.get("MAILWARDEN_KEEP_TEST_ROOT"):
        shutil.rmtree(root, ignore_errors=True)


def rig_fixture(kind: str, stack_factory: Callable[[Path, str], Any]) -> Any:
    """A module-scoped pytest fixture named ``kind`` yielding :func:`proxy_rig`'s rig;
    skips without Dovecot or root (fails under CI)."""
    import pytest

    from support.tools import missing

    @pytest.fixture(scope="module", name=kind)
    def fixture() -> Iterator[ProxyRig]:
        why = available()
        if why:
            missing(why)
        with proxy_rig(kind, stack_factory) as rig:
            yield rig

    return fixture


def fetchmail(rig: ProxyRig, user: str, out: Path) -> subprocess.CompletedProcess[str]:
    """Real fetchmail through the rig's proxy (its protocol, STARTTLS/STLS verified
    against the test CA), keeping the mail on the server; each message goes to a file
    in ``out`` (``--invisible``: no Received field of its own)."""
    out.mkdir(parents=True, exist_ok=True)
    home = out.parent / f"fetchmail-{user}-{rig.kind}"
    home.mkdir(exist_ok=True)
    rc = home / "fetchmailrc"
    rc.write_text(
        f"""set no bouncemail
poll localhost via 127.0.0.1 with proto {rig.kind.upper()} service {rig.port}
  user "{login(user)}" there with password "{PASSWORD}" is root here
  sslproto TLS1.2+ sslcertck sslcertfile "{rig.certs.ca}" sslcommonname localhost
  keep fetchall
  mda "/bin/sh -c 'cat > {out}/msg.$$'"
"""
    )
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(home), FETCHMAILHOME=str(home))
    return subprocess.run(
        ["fetchmail", "-f", str(rc), "-N", "-v", "--invisible", "--pidfile", str(home / "pid")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def neomutt(rig: ProxyRig, user: str, mbox: Path) -> subprocess.CompletedProcess[bytes]:
    """Real neomutt, driven by keystrokes pushed from its muttrc under ``script`` (it
    wants a terminal): open the INBOX through the rig's proxy, tag every message, copy
    them to ``mbox``, quit."""
    home = mbox.parent / f"neomutt-{user}-{rig.kind}"
    home.mkdir(parents=True, exist_ok=True)
    scheme = "imap" if rig.kind == "imap" else "pop"
    folder = f"{scheme}://{login(user).replace('@', '%40')}@127.0.0.1:{rig.port}/"
    rc = home / "muttrc"
    rc.write_text(
        f"""set folder="{folder}"
set spoolfile="{folder + "INBOX" if scheme == "imap" else folder}"
set imap_pass="{PASSWORD}"
set pop_pass="{PASSWORD}"
set ssl_starttls=no
set ssl_force_tls=no
set mbox_type=mbox
set confirmappend=no
set confirmcreate=no
set header_cache=""
set message_cachedir=""
push "<tag-pattern>~A<enter><tag-prefix><copy-message>{mbox}<enter><quit>"
"""
    )
    env = dict(os.environ, HOME=str(home), TERM="xterm")
    return subprocess.run(
        ["script", "-qec", f"neomutt -n -F {rc}", "/dev/null"],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
