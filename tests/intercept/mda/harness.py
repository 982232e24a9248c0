"""`mailwarden mda` and `mailwarden pipe` as a mail system runs them: as an unprivileged user.

Usage::

    rig = MdaRig.create(root)                 # daemon up, store owned by the mail user
    cfg = rig.config("bounce", '[policy]\\nafter_queue_reject = "bounce"\\n')
    done = rig.mda(["--recipient", "a@x", "--", *rig.save_to(path)], message, config=cfg)
    done.returncode, done.stderr

MTAs run the delivery command as the recipient (Postfix's mailbox_command;
for root, ``default_privs``: nobody).  The rig runs everything as ``nobody``
through a launcher script (``rig.launcher``), as an installed ``mailwarden``
would be; when the test interpreter is not readable by that user (a Python
under /root), the launcher uses the system's Python of the same version with
the checkout and the virtualenv's packages on PYTHONPATH.

SECURITY: test-only; the daemon's socket is opened to every local user
(mode 0666) because the deliveries run as another user.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from intercept.harness import Stack
from support.identity import keep_test_user
from support.tools import missing

MAIL_USER = "nobody"
SRC = Path(__file__).resolve().parents[3] / "src"


def mail_user() -> pwd.struct_passwd:
    return pwd.getpwnam(MAIL_USER)


def _runs_as_mail_user(python: str, env: dict[str, str]) -> bool:
    try:
        probe = subprocess.run(
            [python, "-c", "import mailwarden.intercept.mda, aiosmtpd"],
            user=MAIL_USER,
            env={**os.environ, **env},
            cwd="/",
            capture_output=True,
            check=False,
            timeout=60,
        )
    except (PermissionError, FileNotFoundError):
        return False
    return probe.returncode == 0


def write_launcher(path: Path) -> None:
    """A ``mailwarden`` command the mail user can run; see the module documentation."""
    if os.geteuid() != 0:
        missing("running deliveries as another user needs root")
    if _runs_as_mail_user(sys.executable, {}):
        python, pythonpath = sys.executable, ""
    else:
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        python = shutil.which(version, path="/usr/bin:/usr/local/bin") or ""
        pythonpath = f"{SRC}:{sysconfig.get_paths()['purelib']}"
        if not python or not _runs_as_mail_user(python, {"PYTHONPATH": pythonpath}):
            missing(f"no Python the user {MAIL_USER} can run mailwarden with")
    lines = ["#!/bin/sh"]
    if pythonpath:
        lines.append(f"PYTHONPATH='{pythonpath}'; export PYTHONPATH")
    lines.append(f"exec '{python}' -m mailwarden \"$@\"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o755)


def give_to_mail_user(*paths: Path) -> None:
    user = mail_user()
    for path in paths:
        path.mkdir(parents=True, exist_ok=True)
        os.chown(path, user.pw_uid, user.pw_gid)


@dataclass
class MdaRig:
    root: Path
    stack: Stack
    launcher: Path

    @classmethod
    def create(cls, root: Path, *, extra_toml: str = "") -> MdaRig:
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        stack = Stack.create(root / "mw", extra_toml=extra_toml)
        text = stack.config.read_text().replace("[daemon]\n", '[daemon]\nsocket_mode = "0666"\n', 1)
        stack.config.write_text(text)
        (root / "mw").chmod(0o755)
        give_to_mail_user(root / "mw" / "store", root / "out")
        launcher = root / "bin" / "mailwarden"
        write_launcher(launcher)
        return cls(root, stack, launcher)

    @property
    def out(self) -> Path:
        """A folder the mail user may write to."""
        return self.root / "out"

    def config(self, name: str, toml: str = "") -> Path:
        """The rig's configuration plus ``toml`` (new tables only), as ``name``.toml."""
        path = self.root / f"{name}.toml"
        path.write_text(self.stack.config.read_text() + "\n" + toml)
        path.chmod(0o644)
        keep_test_user(path)
        return path

    def command(self, verb: str, args: list[str], config: Path | None) -> list[str]:
        return [str(self.launcher), verb, "-c", str(config or self.stack.config), *args]

    def run(
        self, verb: str, args: list[str], data: bytes, *, config: Path | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            self.command(verb, args, config),
            input=data,
            capture_output=True,
            user=MAIL_USER,
            cwd="/",
            check=False,
            timeout=120,
        )

    def mda(
        self, args: list[str], data: bytes, *, config: Path | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        return self.run("mda", args, data, config=config)

    def pipe(
        self, args: list[str], data: bytes, *, config: Path | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        return self.run("pipe", args, data, config=config)

    def save_to(self, path: Path) -> list[str]:
        """An "MDA" that stores its standard input in ``path``."""
        return ["/bin/sh", "-c", 'exec cat > "$0"', str(path)]

    def quarantined(self) -> list[dict[str, object]]:
        """The quarantine's entries, read as the mail user (who owns the store)."""
        done = subprocess.run(
            [str(self.launcher), "quarantine", "list", "-c", str(self.stack.config), "--json"],
            capture_output=True,
            user=MAIL_USER,
            cwd="/",
            check=True,
            timeout=120,
        )
        return list(json.loads(done.stdout or b"[]"))
