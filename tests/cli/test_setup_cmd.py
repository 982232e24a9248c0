"""``mailwarden setup`` as an administrator uses it: at a terminal, and from scripts.

At a terminal (a real pseudo-terminal), setup lists the MTAs it finds with
their versions and modes, asks which one and how, shows the plan and asks
before applying; "no" changes nothing.  Without a terminal it refuses to
guess.  The qmail tree of tests/setup (a layout, no daemon needed for a
plan) keeps these fast; the MTA integrations have their own tests.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from setup.mta_trees import qmail_home, tree_snapshot

MAILWARDEN = [sys.executable, "-m", "mailwarden"]


class Terminal:
    """A command on a pseudo-terminal: ``expect`` text, ``send`` a line."""

    def __init__(self, argv: list[str]) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True, start_new_session=True
        )
        os.close(slave)
        self.seen = ""

    def expect(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"never saw {text!r} in:\n{self.seen}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the child closed the terminal
                    chunk = b""
                assert chunk, f"the program ended before {text!r}:\n{self.seen}"
                self.seen += chunk.decode(errors="replace").replace("\r\n", "\n")
        return self.seen

    def send(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def wait(self) -> int:
        code = self.proc.wait(60)
        os.close(self.master)
        return code


def _base(home: Path, tmp_path: Path) -> list[str]:
    config = tmp_path / "mw" / "mailwarden.toml"
    config.parent.mkdir(exist_ok=True)
    config.write_text("# test\n")
    return [
        *MAILWARDEN,
        "setup",
        "--mta-config-dir",
        str(home),
        "-c",
        str(config),
        "--mailwarden-command",
        "/usr/bin/mailwarden",
        "--no-service",
    ]


def test_asks_for_the_mode_then_before_applying(tmp_path: Path) -> None:
    home = qmail_home(tmp_path / "var-qmail", tmp_path / "queue", qmailqueue=True)
    original = tree_snapshot(home)
    term = Terminal([*_base(home, tmp_path), "--mta", "qmail"])
    term.expect("modes: qmail-queue, mda")
    assert "qmail netqmail/notqmail (QMAILQUEUE)" in term.seen
    term.expect("How should mailwarden sit in qmail?")
    term.send("1")
    term.expect("Apply these changes? [y/N]")
    assert f"+++ {home / 'supervise/qmail-smtpd/run'}" in term.seen
    assert "env QMAILQUEUE=" in term.seen
    term.send("n")
    term.expect("cancelled: nothing was changed")
    assert term.wait() == 1
    assert tree_snapshot(home) == original


def test_lists_the_mtas_and_applies_on_yes(tmp_path: Path) -> None:
    home = qmail_home(tmp_path / "var-qmail", tmp_path / "queue", qmailqueue=False)
    original = tree_snapshot(home)
    term = Terminal(_base(home, tmp_path))
    text = term.expect("Which MTA?")
    number = next(
        line.split(")")[0].strip()
        for line in text.splitlines()
        if line.strip()[:1].isdigit() and ") qmail " in line
    )
    assert "qmail 1.03 (no QMAILQUEUE)" in text
    term.send(number)
    term.expect("How should mailwarden sit in qmail?")
    term.send("1")
    term.expect("Apply these changes? [y/N]")
    term.send("y")
    term.expect("applied; manifest:")
    assert term.wait() == 0
    assert (home / "bin" / "qmail-queue.orig").exists()

    # the undo is listed and asked too
    term = Terminal([*_base(home, tmp_path), "--uninstall"])
    term.expect("Undo the setup? [y/N]")
    assert f"{home / 'bin' / 'qmail-queue.orig'}: remove (setup created it)" in term.seen
    term.send("y")
    term.expect("qmail: uninstalled")
    assert term.wait() == 0
    assert tree_snapshot(home) == original


def test_without_a_terminal_setup_does_not_guess(tmp_path: Path) -> None:
    home = qmail_home(tmp_path / "var-qmail", tmp_path / "queue", qmailqueue=True)
    original = tree_snapshot(home)
    for extra, message in (
        (["--yes"], "without a terminal, give --mta and --mode"),
        (["--mta", "qmail", "--mode", "mda"], "no terminal to ask on: add --yes"),
    ):
        done = subprocess.run(
            [*_base(home, tmp_path), *extra],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
            check=False,
        )
        assert done.returncode == 2, done.stdout + done.stderr
        assert message in done.stderr
    assert tree_snapshot(home) == original


def test_help_is_a_manual() -> None:
    done = subprocess.run(
        [*MAILWARDEN, "setup", "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    for text in ("--mta-config-dir DIR", "--uninstall", "--dry-run", "exit status", "manifest"):
        assert text in done.stdout
    for mode in ("content-filter", "proxy", "milter", "mda", "malware-acl", "qmail-queue"):
        assert mode in done.stdout
