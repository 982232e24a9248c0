"""``mailwarden setup --mta qmail`` on a tree laid out like /var/qmail, against a real daemon.

qmail-queue mode both ways docs/qmail.md gives (QMAILQUEUE in qmail-smtpd's
run script; the real qmail-queue renamed): the program setup wires in is then
run exactly as qmail-smtpd runs qmail-queue (``support/qmail_standin.py``):
clean mail is queued tagged with its envelope, EICAR is refused with exit 31
(554).  mda mode: qmail-start's default delivery runs ``mailwarden mda``
before procmail, executed as qmail-local does (``/bin/sh -c`` with the
environment qmail-command(8) lists, as the recipient), which hands the
message to the mda agent setup enabled (its socket 0666, the store root's:
what is stored or quarantined went through the agent).  A second run has nothing to do;
``--uninstall`` restores every byte and mode (the setuid bit included).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from intercept.harness import EICAR, Stack, wait_until
from intercept.mail import make_message
from intercept.mda.harness import MAIL_USER, give_to_mail_user, write_launcher
from intercept.mda.resident import answers
from mailwarden.setup import INTEGRATIONS, SetupContext, SetupError
from setup.mta_trees import launcher, qmail_home, run_setup, tree_snapshot
from support.qmail_standin import queued, submit
from support.tools import missing


def _setup(
    mta_dir: Path, stack: Stack, program: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return run_setup("qmail", mta_dir, stack.config, program, *args)


def _passes(argv: list[str], queue: Path) -> None:
    clean, clean_id = make_message(sender="a@remote.example", to="b@test.example")
    done = submit(argv, clean, "a@remote.example", ["b@test.example"])
    assert done.status == 0, done.stderr
    message, envelope = queued(queue)[-1]
    assert clean_id.encode() in message and b"X-Virus-Status: Clean" in message
    assert envelope == b"Fa@remote.example\0Tb@test.example\0\0"

    infected, _ = make_message(sender="a@remote.example", to="b@test.example", attachment=EICAR)
    before = len(queued(queue))
    done = submit(argv, infected, "a@remote.example", ["b@test.example"])
    assert (done.status, done.reply) == (
        31,
        "554 mail server permanently rejected message (#5.3.0)",
    )
    assert len(queued(queue)) == before


def test_qmailqueue_variable_in_the_smtpd_run_script(tmp_path: Path, stack: Stack) -> None:
    home = qmail_home(tmp_path / "var-qmail", tmp_path / "queue", qmailqueue=True)
    program = launcher(tmp_path / "bin" / "mailwarden")
    original = tree_snapshot(home)

    done = _setup(home, stack, program, "--mode", "qmail-queue", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "check passed: sh -n" in done.stdout
    assert "qmail is not running; skipped: svc -t" in done.stdout
    run = (home / "supervise" / "qmail-smtpd" / "run").read_text()
    wrapper = home / "bin" / "qmail-scan-queue"
    assert f"env QMAILQUEUE={wrapper} {home}/bin/qmail-smtpd 2>&1" in run
    assert wrapper.stat().st_mode & 0o777 == 0o755
    # what tcpserver runs for each connection: the variable names qmail-queue's stand-in
    found = re.search(r"QMAILQUEUE=(\S+)", run)
    assert found is not None
    _passes([found.group(1)], tmp_path / "queue")

    again = _setup(home, stack, program, "--mode", "qmail-queue", "--yes")
    assert "nothing to do" in again.stdout, again.stdout + again.stderr

    gone = _setup(home, stack, program, "--uninstall", "--yes")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert tree_snapshot(home) == original


def test_renamed_qmail_queue_without_the_variable(tmp_path: Path, stack: Stack) -> None:
    home = qmail_home(tmp_path / "var-qmail", tmp_path / "queue", qmailqueue=False)
    program = launcher(tmp_path / "bin" / "mailwarden")
    original = tree_snapshot(home)

    done = _setup(home, stack, program, "--mode", "qmail-queue", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    real, orig = home / "bin" / "qmail-queue", home / "bin" / "qmail-queue.orig"
    assert f"mv {real} {orig}" in done.stdout
    assert orig.stat().st_mode & 0o7777 == 0o4755  # kept its setuid bit
    assert b"mailwarden" in real.read_bytes() and str(orig).encode() in real.read_bytes()
    _passes([str(real)], tmp_path / "queue")

    again = _setup(home, stack, program, "--mode", "qmail-queue", "--yes")
    assert "nothing to do" in again.stdout, again.stdout + again.stderr

    gone = _setup(home, stack, program, "--uninstall", "--yes")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert tree_snapshot(home) == original
    assert real.stat().st_mode & 0o7777 == 0o4755


@pytest.fixture
def agent_stack() -> Iterator[Stack]:
    """A daemon's configuration whose mda agent listens where the mail user can reach it,
    below a folder every user may enter (not pytest's 0700 one)."""
    folder = Path(tempfile.mkdtemp(prefix="mwsetup-qmail-"))
    folder.chmod(0o755)
    sock = folder / "mw" / "mda.sock"
    stack = Stack.create(
        folder / "mw",
        extra_toml=f'[mda]\nagent_socket = "{sock}"\nagent_socket_group = ""\n',
    )
    (folder / "mw").chmod(0o755)
    try:
        yield stack
    finally:
        stack.stop_all()
        if not os.environ.get("MAILWARDEN_KEEP_TEST_ROOT"):
            shutil.rmtree(folder, ignore_errors=True)


def test_mda_as_qmail_starts_default_delivery(agent_stack: Stack) -> None:
    if shutil.which("procmail") is None:
        missing("procmail is not installed (scripts/bootstrap installs it)")
    stack = agent_stack
    folder = stack.root.parent
    home = qmail_home(folder / "var-qmail", folder / "queue", qmailqueue=True)
    program = folder / "bin" / "mailwarden"
    write_launcher(program)  # one the delivering user can run
    # preline(1) stand-in: the three lines qmail-local puts in the environment, then the message
    (home / "bin" / "preline").write_text(
        '#!/bin/sh\n{ printf "%s%s%s" "$UFLINE" "$RPLINE" "$DTLINE"; cat; } | "$@"\n'
    )
    (home / "bin" / "preline").chmod(0o755)
    original = tree_snapshot(home)
    mw_original = {k: v for k, v in tree_snapshot(stack.root).items() if k.endswith(".toml")}

    done = _setup(home, stack, program, "--mode", "mda", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    # qmail-local delivers as each recipient, primary group only: the agent's socket is 0666
    assert f"+++ {stack.root / 'conf.d' / '50-setup-qmail.toml'}" in done.stdout
    assert '+agents = ["mda-agent"]' in done.stdout
    assert '+agent = "require"\n+agent_socket_mode = "0666"' in done.stdout
    rc = (home / "rc").read_text()
    found = re.search(r"qmail-start ('[^']*')", rc)
    assert found is not None, rc
    delivery = shlex.split(found.group(1))[0]
    assert delivery.startswith(f"|preline {program} mda -c {stack.config} ")
    assert delivery.endswith("procmail DEFAULT=./Maildir/")

    # the store is root's (the agent's user here), in a folder the recipient cannot enter
    store = stack.root / "store"
    store.mkdir(mode=0o700)
    stack.start_daemon()
    agent = stack._spawn("mda-agent", ["mda-agent", "-c", str(stack.config)])
    sock = stack.root / "mda.sock"
    wait_until(lambda: agent.popen.poll() is None and answers(str(sock)), 60, "the mda agent")
    assert stat.S_IMODE(sock.stat().st_mode) == 0o666

    user_home = folder / "home"
    give_to_mail_user(user_home, *(user_home / "Maildir" / sub for sub in ("tmp", "new", "cur")))

    def deliver(message: bytes) -> subprocess.CompletedProcess[bytes]:
        env = {
            "PATH": f"{home / 'bin'}:/usr/bin:/bin",
            "HOME": str(user_home),
            "USER": MAIL_USER,
            "SENDER": "a@remote.example",
            "RECIPIENT": "b@test.example",
            "UFLINE": "From a@remote.example Thu Jan  1 00:00:00 2026\n",
            "RPLINE": "Return-Path: <a@remote.example>\n",
            "DTLINE": "Delivered-To: b@test.example\n",
        }
        # qmail-command(8): the command after | runs through /bin/sh -c, in the home,
        # as the recipient
        return subprocess.run(
            ["/bin/sh", "-c", delivery[1:]],
            input=message.replace(b"\r\n", b"\n"),
            env=env,
            cwd=user_home,
            capture_output=True,
            timeout=120,
            check=False,
            user=MAIL_USER,
        )

    clean, clean_id = make_message(sender="a@remote.example", to="b@test.example")
    done_clean = deliver(clean)
    assert done_clean.returncode == 0, done_clean.stderr
    stored = [p.read_bytes() for p in (user_home / "Maildir" / "new").iterdir()]
    assert len(stored) == 1 and clean_id.encode() in stored[0]
    assert b"X-Virus-Status: Clean" in stored[0] and b"Delivered-To: b@test.example" in stored[0]

    infected, _ = make_message(sender="a@remote.example", to="b@test.example", attachment=EICAR)
    done_infected = deliver(infected)
    assert done_infected.returncode == 0, done_infected.stderr  # quarantined: delivered nowhere
    assert len(list((user_home / "Maildir" / "new").iterdir())) == 1
    listed = stack.cli("quarantine", "list", "--json")
    assert "Eicar" in listed.stdout
    # the recipient could not have written that store: the agent did
    assert store.stat().st_uid == 0 and stat.S_IMODE(store.stat().st_mode) == 0o700
    records = [json.loads(line) for line in agent.output(100_000).splitlines() if line[:1] == "{"]
    assert [r["action"] for r in records] == ["accept", "quarantine"]
    stack.stop_all()

    gone = _setup(home, stack, program, "--uninstall", "--yes")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert tree_snapshot(home) == original
    assert {
        k: v for k, v in tree_snapshot(stack.root).items() if k.endswith(".toml")
    } == mw_original


def test_not_installed(tmp_path: Path, stack: Stack) -> None:
    done = _setup(
        tmp_path / "nothing", stack, Path("/usr/bin/mailwarden"), "--mode", "mda", "--yes"
    )
    assert done.returncode == 2
    assert "qmail: not installed on this host; nothing was changed" in done.stderr
    assert not (tmp_path / "nothing").exists()


def test_another_qmailqueue_is_not_overwritten(tmp_path: Path, stack: Stack) -> None:
    home = qmail_home(tmp_path / "var-qmail", tmp_path / "queue", qmailqueue=True)
    run = home / "supervise" / "qmail-smtpd" / "run"
    run.write_text(run.read_text().replace(" 0 smtp ", " 0 smtp env QMAILQUEUE=/opt/other ", 1))
    original = tree_snapshot(home)
    done = _setup(home, stack, Path("/usr/bin/mailwarden"), "--mode", "qmail-queue", "--yes")
    assert done.returncode == 2
    assert "already sets QMAILQUEUE=/opt/other" in done.stderr
    assert tree_snapshot(home) == original
    assert not (home / "bin" / "qmail-scan-queue").exists()


def _ctx(home: Path, config: Path) -> SetupContext:
    return SetupContext(home, "/usr/bin/mailwarden", config, systemd=False)


def test_mda_in_control_defaultdelivery_and_program_deliveries(tmp_path: Path) -> None:
    home = qmail_home(tmp_path / "var-qmail", tmp_path / "queue", qmailqueue=True)
    config = tmp_path / "mailwarden.toml"
    # "Life with qmail": rc reads the delivery from control/defaultdelivery
    (home / "rc").write_text(
        '#!/bin/sh\nexec env - PATH="/var/qmail/bin:$PATH" \\\n'
        'qmail-start "`cat /var/qmail/control/defaultdelivery`"\n'
    )
    (home / "control" / "defaultdelivery").write_text("|/usr/bin/maildrop\n")
    plan = INTEGRATIONS["qmail"].plan(_ctx(home, config), "mda")
    assert [e.path for e in plan.edits] == [home / "control" / "defaultdelivery"]
    assert plan.edits[0].text == (
        f"|preline /usr/bin/mailwarden mda -c {config} "
        '--sender "$SENDER" --recipient "$RECIPIENT" -- /usr/bin/maildrop\n'
    )
    assert [c.argv for c in plan.reloads] == [("svc", "-t", str(home / "supervise/qmail-send"))]
    assert plan.agents == ("mda-agent",)
    assert plan.settings == {"mda": {"agent": "require", "agent_socket_mode": "0666"}}

    (home / "control" / "defaultdelivery").write_text(plan.edits[0].text or "")
    with pytest.raises(SetupError, match="already runs mailwarden"):
        INTEGRATIONS["qmail"].plan(_ctx(home, tmp_path / "other.toml"), "mda")

    (home / "control" / "defaultdelivery").write_text("Maildir\n")
    with pytest.raises(SetupError, match="cannot read the default delivery 'Maildir'"):
        INTEGRATIONS["qmail"].plan(_ctx(home, config), "mda")
