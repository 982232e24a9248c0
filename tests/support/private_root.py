"""Debian MTAs unpacked into a root of their own, and their daemons: what the harnesses share.

Sendmail and Exim conflict with Postfix as Debian packages, so the tests
never install them: their packages are fetched with ``apt-get download``
and unpacked with ``dpkg -x`` into a private root (``support/sendmail.py``,
``support/exim.py``, ``intercept/mda/exim_local.py``).  Those harnesses use
these pieces::

    root = unpacked_root(DEFAULT, "MAILWARDEN_EXIM_ROOT", PACKAGES, BINARY)  # or None
    missing_libraries(root / BINARY)             # ["libspf2.so.2", ...] (bootstrap installs them)
    daemon = Daemon.start(argv, log=folder / "mta.out", ports=[25025], describe=logs)
    daemon.stop()                                 # SIGTERM, then SIGKILL, by PID
    read_logs(folder, ("exim.out", "log/mainlog"))

SECURITY: test-only.  apt-get download and dpkg -x need no root; the daemons
the harnesses start do (they are stopped by PID, never by name).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


def unpacked_root(
    default: Path,
    env_var: str,
    packages: Sequence[str],
    binary: str,
    *,
    fetch: bool = True,
    shared: bool = False,
) -> Path | None:
    """The root holding ``binary`` ($``env_var`` or ``default``), unpacked first when it can be.

    ``shared``: the MTA runs itself again as its own user, who must reach the root.
    """
    configured = os.environ.get(env_var)
    root = Path(configured) if configured else default
    if (root / binary).exists():
        return root
    if not fetch or shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        return None
    try:
        unpack(root, packages, shared=shared)
    except (OSError, subprocess.SubprocessError):
        return None
    return root if (root / binary).exists() else None


def unpack(root: Path, packages: Sequence[str], *, shared: bool = False) -> None:
    """``apt-get download`` the packages and ``dpkg -x`` them into ``root``, in one rename."""
    with tempfile.TemporaryDirectory(prefix="mw-debs-") as tmp:
        subprocess.run(
            ["apt-get", "download", "-q", *packages],
            cwd=tmp,
            check=True,
            capture_output=True,
            timeout=300,
        )
        root.parent.mkdir(parents=True, exist_ok=True)
        if shared:
            root.parent.chmod(0o755)
        staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=root.parent))
        for deb in sorted(Path(tmp).glob("*.deb")):
            subprocess.run(["dpkg", "-x", str(deb), str(staging)], check=True, timeout=120)
        if shared:
            staging.chmod(0o755)
        # a half-unpacked root is never seen by another run
        if root.exists():
            shutil.rmtree(staging)
        else:
            staging.rename(root)


def missing_libraries(binary: Path) -> list[str]:
    """Shared libraries ``binary`` cannot find (scripts/bootstrap installs them)."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False).stdout
    return [line.split()[0] for line in out.splitlines() if "not found" in line]


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def read_logs(folder: Path, names: Iterable[str], limit: int = 4000) -> str:
    """The tails of the named files below ``folder``, each under its name."""
    parts = []
    for name in names:
        with contextlib.suppress(OSError):
            parts.append(f"--- {name}\n" + (folder / name).read_text(errors="replace"))
    return "\n".join(parts)[-limit:]


@dataclass
class Daemon:
    """An MTA daemon in the foreground, its output appended to ``log``."""

    process: subprocess.Popen[bytes]

    @classmethod
    def start(
        cls,
        argv: Sequence[str],
        *,
        log: Path,
        ports: Sequence[int],
        describe: Callable[[], str],
        cwd: Path | None = None,
        timeout: float = 30.0,
    ) -> Daemon:
        """Start ``argv`` and wait until every port listens (RuntimeError with ``describe()``)."""
        out = open(log, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            process = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
        finally:
            out.close()
        deadline = time.monotonic() + timeout
        while not all(port_open(p) for p in ports):
            if process.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited: {describe()}")
            if time.monotonic() > deadline:
                daemon = cls(process)
                daemon.stop()
                raise RuntimeError(f"{argv[0]} did not listen: {describe()}")
            time.sleep(0.05)
        return cls(process)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
