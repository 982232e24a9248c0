"""A private PostgreSQL cluster for the store tests, from Debian's postgresql package.

Used by the ``postgres`` fixture (``tests/conftest.py``) and by tests that need
a cluster of their own (the outage test stops and starts it)::

    with private_cluster() as pg:
        dsn = pg.create_database()          # a fresh database and its owner role
        ...
        pg.stop(); pg.start()               # the same cluster, same socket

Each cluster lives in a folder from ``tempfile.mkdtemp``: ``data/`` from
initdb, a unix socket in ``sock/``, no TCP listener.  Tests run as root under
CI and initdb refuses root, so the cluster then belongs to Debian's
``postgres`` user and its programs run through ``runuser``.  The stores
connect as a role with a password (SCRAM), read from a 0600 file, so the
password path of the backend is the one under test; the harness itself
connects as the superuser, which ``pg_hba.conf`` trusts on the socket only.

SECURITY: test-only; unix socket in a private folder, stopped by its
postmaster PID (``pg_ctl stop``) at the end.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support.tools import missing

#: Debian installs each major version's programs here.
_DEBIAN_ROOT = Path("/usr/lib/postgresql")
_SUPERUSER = "postgres"
_ROLE = "mailwarden"


def find_bindir() -> Path | None:
    """Newest ``/usr/lib/postgresql/<version>/bin`` that has initdb, else ``PATH``'s."""
    if _DEBIAN_ROOT.is_dir():
        versions = sorted(
            (p for p in _DEBIAN_ROOT.iterdir() if (p / "bin" / "initdb").exists()),
            key=lambda p: int(p.name) if p.name.isdigit() else 0,
        )
        if versions:
            return versions[-1] / "bin"
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


@dataclass
class Cluster:
    root: Path
    bindir: Path
    owner: str | None  # a user to run the programs as, when the tests run as root
    password: str = field(default_factory=lambda: secrets.token_hex(16))
    _databases: int = 0

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def password_file(self) -> Path:
        return self.root / "password"

    def run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bindir / program), *args]
        if self.owner is not None:
            argv = ["runuser", "-u", self.owner, "--", *argv]
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=120, check=check, cwd=self.root
        )

    def start(self) -> None:
        options = f"-c listen_addresses='' -c unix_socket_directories='{self.socket_dir}'"
        self.run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-w",
            "-o",
            options,
            "start",
        )

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def psql(self, sql: str, database: str = "postgres") -> str:
        done = self.run(
            "psql", "-h", str(self.socket_dir), "-U", _SUPERUSER, "-d", database,
            "-v", "ON_ERROR_STOP=1", "-qAtc", sql,
        )  # fmt: skip
        return done.stdout

    def create_database(self) -> str:
        """A new empty database owned by the store's role; return its DSN (no password)."""
        self._databases += 1
        name = f"mailwarden_{self._databases}"
        self.psql(f"CREATE DATABASE {name} OWNER {_ROLE}")
        return self.dsn(name)

    def dsn(self, database: str) -> str:
        return f"host={self.socket_dir} dbname={database} user={_ROLE}"

    def config(self, dsn: str) -> str:
        """The ``[store]`` section for a store on ``dsn``."""
        return (
            f'[store]\nbackend = "postgresql"\ndsn = "{dsn}"\n'
            f'password_file = "{self.password_file}"\n'
        )


def _owner() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(_SUPERUSER)
    except KeyError:
        missing("the postgres user does not exist (apt-get install postgresql)")
    return _SUPERUSER


@contextlib.contextmanager
def private_cluster() -> Iterator[Cluster]:
    """Initialise and start a cluster; stop it and remove its folder at the end."""
    bindir = find_bindir()
    if bindir is None:
        missing("PostgreSQL is not installed (apt-get install postgresql)")
    owner = _owner()
    root = Path(tempfile.mkdtemp(prefix="mailwarden-pg-"))
    cluster = Cluster(root, bindir, owner)
    (root / "sock").mkdir(mode=0o700)
    cluster.password_file.write_text(cluster.password + "\n")
    os.chmod(cluster.password_file, 0o600)
    if owner is not None:
        info = pwd.getpwnam(owner)
        for path in (root, root / "sock"):
            os.chown(path, info.pw_uid, info.pw_gid)
    try:
        cluster.run(
            "initdb", "-D", str(cluster.data), "-U", _SUPERUSER, "-A", "trust",
            "--no-sync", "-E", "UTF8", "--locale", "C",
        )  # fmt: skip
        (cluster.data / "pg_hba.conf").write_text(
            f"local all {_SUPERUSER} trust\nlocal all all scram-sha-256\n"
        )
        cluster.start()
        cluster.psql(f"CREATE ROLE {_ROLE} LOGIN PASSWORD '{cluster.password}'")
    except subprocess.CalledProcessError as exc:
        log = root / "log"
        detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"PostgreSQL: {exc.cmd} failed: {exc.stderr}\n{detail}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
