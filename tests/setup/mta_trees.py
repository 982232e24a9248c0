"""qmail and ZMailer installations laid out as their standard installs, for the setup tests.

Neither is packaged by Debian.  These write the files setup reads and edits,
with the text their documentation gives, under a temporary root, and put
the programs setup wires mailwarden to in place with the stand-ins of
``tests/support`` (which follow the documented protocols byte for byte)::

    home = qmail_home(root / "var-qmail", queue_dir, qmailqueue=True)
    conf = zmailer_tree(root / "etc-zmailer", root / "usr-lib-zmailer", postoffice)
    tree_snapshot(root)      # {relative path: (bytes, mode)} for byte-for-byte checks
    launcher(path)           # a ``mailwarden`` program running this checkout
    run_setup("qmail", home, config, program, "--mode", "mda", "--yes")   # the CLI

SECURITY: test-only; writes under the given folders.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support.qmail_standin import write_qmail_queue

#: daemontools' run script for qmail-smtpd, as "Life with qmail" gives it
QMAIL_SMTPD_RUN = """\
#!/bin/sh
QMAILDUID=`id -u qmaild`
NOFILESGID=`id -g qmaild`
MAXSMTPD=`cat {home}/control/concurrencyincoming`
LOCAL=`head -1 {home}/control/me`
exec /usr/local/bin/softlimit -m 120000000 \\
    /usr/local/bin/tcpserver -v -R -l "$LOCAL" -x /etc/tcp.smtp.cdb -c "$MAXSMTPD" \\
        -u "$QMAILDUID" -g "$NOFILESGID" 0 smtp {home}/bin/qmail-smtpd 2>&1
"""

#: qmail 1.03's /var/qmail/rc for Maildir delivery (from its /var/qmail/boot/home)
QMAIL_RC = """\
#!/bin/sh

# Using splogger to send the log through syslog.
# Using qmail-local to deliver messages to ~/Maildir/ by default.

exec env - PATH="{home}/bin:$PATH" \\
qmail-start ./Maildir/ splogger qmail
"""


def qmail_home(home: Path, queue: Path, *, qmailqueue: bool) -> Path:
    """A qmail home; ``qmailqueue``: its qmail-smtpd knows the QMAILQUEUE variable."""
    for sub in ("bin", "control", "supervise/qmail-smtpd", "supervise/qmail-send"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    write_qmail_queue(home / "bin" / "qmail-queue", queue)
    # real qmail-queue is setuid qmailq, mode 4711: setup must keep those bits
    (home / "bin" / "qmail-queue").chmod(0o4755)
    # the program is only read (for the QMAILQUEUE name it contains), never run
    marker = b"QMAILQUEUE\0" if qmailqueue else b"qmail-queue\0"
    (home / "bin" / "qmail-smtpd").write_bytes(b"\x7fELF qmail-smtpd stand-in\0" + marker)
    (home / "bin" / "qmail-smtpd").chmod(0o711)
    (home / "control" / "me").write_text("mx.test.example\n")
    (home / "control" / "concurrencyincoming").write_text("20\n")
    run = home / "supervise" / "qmail-smtpd" / "run"
    run.write_text(QMAIL_SMTPD_RUN.format(home=home))
    run.chmod(0o755)
    (home / "rc").write_text(QMAIL_RC.format(home=home))
    (home / "rc").chmod(0o755)
    return home


def zmailer_tree(config: Path, mailbin: Path, postoffice: Path) -> Path:
    """``zmailer.conf`` and ``smtpserver.conf`` in ``config``, smtpserver in ``mailbin``."""
    config.mkdir(parents=True, exist_ok=True)
    mailbin.mkdir(parents=True, exist_ok=True)
    (config / "zmailer.conf").write_text(
        "# ZMailer configuration: where the parts live\n"
        f"ZCONFIG={config}/zmailer.conf\n"
        f"MAILBIN={mailbin}\n"
        f"MAILSHARE={config}\n"
        f"MAILVAR={config}\n"
        f"POSTOFFICE={postoffice}\n"
        "LOGDIR=/var/log/zmailer\n"
    )
    (config / "smtpserver.conf").write_text(
        "#\n# smtpserver configuration\n#\n"
        "PARAM maxsize 10000000\n"
        "PARAM max-error-recipients 3\n"
        "PARAM debugcmd\n"
        "\n"
        "# HELO/EHLO patterns\n"
        "localhost          999 ftveR\n"
        "*                  999 ftveR\n"
    )
    (mailbin / "smtpserver").write_bytes(b"\x7fELF smtpserver stand-in\0")
    (mailbin / "smtpserver").chmod(0o755)
    (mailbin / "zmailer").write_text('#!/bin/sh\necho zmailer stand-in: "$@"\n')
    (mailbin / "zmailer").chmod(0o755)
    return config


def tree_snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mode)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def launcher(path: Path) -> Path:
    """``mailwarden`` as a program the MTA can run: this checkout's interpreter."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\nexec '{sys.executable}' -m mailwarden \"$@\"\n")
    path.chmod(0o755)
    return path


def run_setup(
    mta: str,
    mta_dir: Path,
    config: Path,
    program: Path | str,
    *args: str,
    argv0: tuple[str, ...] = (sys.executable, "-m", "mailwarden"),
    user: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``mailwarden setup --mta MTA --mta-config-dir DIR -c CONFIG ... ARGS``, no terminal,
    no systemctl; ``argv0`` and ``user`` run another mailwarden as another user."""
    return subprocess.run(
        [
            *argv0,
            "setup",
            "--mta",
            mta,
            "--mta-config-dir",
            str(mta_dir),
            "-c",
            str(config),
            "--mailwarden-command",
            str(program),
            "--no-service",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
        user=user,
        cwd="/",
    )
