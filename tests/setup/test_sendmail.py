"""``mailwarden setup --mta sendmail``: the plans, then real Sendmail from Debian's packages.

The plans are checked on Debian's own ``sendmail.mc`` (as the package ships
it) and on the test instance's: where the block goes, what it holds, that a
second plan changes nothing, and what setup refuses.  Then, with Sendmail
unpacked in its own root (``support/sendmail.py``) and ``mailwarden setup``
run as the administrator runs it: m4 rebuilds sendmail.cf, ``sendmail -bt``
passes, a clean message reaches the sink tagged through the milter and
EICAR is refused (554), the mda mode makes the local mailer ``mailwarden
mda`` (clean mail stored tagged by the MDA it hands to, EICAR quarantined),
and ``--uninstall`` leaves every file byte-identical.  Bad input:
Sendmail not installed, no sendmail.mc, a milter already added by hand, and
a checker that fails (every file restored).

Sendmail waits a minute at start when the host name has no domain, so every
command that runs it (setup's checker and version probe included) runs in a
UTS namespace named ``mx.test.example``, as ``support/sendmail.py`` does.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from intercept.harness import EICAR, Stack, free_port, wait_until
from intercept.mail import data_reply, make_message
from intercept.mda.resident import answers
from intercept.milter.conftest import start_milter_process
from mailwarden.setup import INTEGRATIONS, SetupContext, SetupError
from setup.mta_sites import in_quarantine, snapshot, stand_in_mda, stored
from support.sendmail import HOSTNAME, SendmailInstance, require_sendmail_root
from support.smtp_sink import Sink, smtp_sink

MAILWARDEN = [sys.executable, "-m", "mailwarden"]
SENDMAIL = INTEGRATIONS["sendmail"]
SENDER = "x@remote.example"
RCPT = "alice@test.example"
#: the files setup may change in the instance's folder (the rest is its queue and pid)
CONFIG_FILES = ("sendmail.mc", "sendmail.cf", "aliases")


@dataclass
class Rig:
    folder: Path
    root: Path
    sendmail: SendmailInstance
    stack: Stack
    sink: Sink
    milter: str

    @property
    def config_dir(self) -> Path:
        return self.sendmail.folder

    @property
    def search_path(self) -> str:
        return str(self.root / "usr/libexec/sendmail")

    def files(self) -> dict[str, tuple[bytes, int]]:
        return {k: v for k, v in snapshot(self.config_dir).items() if k in CONFIG_FILES}

    def mailwarden_files(self) -> dict[str, tuple[bytes, int]]:
        return {k: v for k, v in snapshot(self.stack.config.parent).items() if k.endswith(".toml")}

    def ctx(self, **extra: object) -> SetupContext:
        values: dict[str, object] = {
            "mta_config_dir": self.config_dir,
            "mailwarden": str(Path(sys.executable).parent / "mailwarden"),
            "mailwarden_config": self.stack.config,
            "path": self.search_path,
            "systemd": False,
        }
        values.update(extra)
        return SetupContext(**values)  # type: ignore[arg-type]

    def setup(self, *args: str, search: str = "") -> subprocess.CompletedProcess[str]:
        """``mailwarden setup --mta sendmail ...`` on this instance, in the instance's UTS name."""
        argv = [
            "unshare",
            "-u",
            "sh",
            "-c",
            f'hostname {HOSTNAME} && exec "$@"',
            "setup",
            *MAILWARDEN,
            "setup",
            "--mta",
            "sendmail",
            "--mta-config-dir",
            str(self.config_dir),
            "-c",
            str(self.stack.config),
            "--search-path",
            f"{search}:{self.search_path}" if search else self.search_path,
            "--mailwarden-command",
            str(Path(sys.executable).parent / "mailwarden"),
            "--no-service",
            *args,
        ]
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def delivered(self, mid: str) -> list[bytes]:
        return [m.data for m in self.sink.messages if mid.encode() in m.data]


@pytest.fixture
def rig() -> Iterator[Rig]:
    root = require_sendmail_root()
    folder = Path(tempfile.mkdtemp(prefix="mwsetup-sendmail-"))
    folder.chmod(0o755)
    milter = f"inet:{free_port()}@127.0.0.1"
    with smtp_sink() as (sink, relay_port):
        sendmail = SendmailInstance.create(
            folder / "mail", root, port=free_port(), relay_port=relay_port
        )
        agent = folder / "mw" / "mda.sock"
        stack = Stack.create(
            folder / "mw",
            extra_toml=f'[milter]\nsocket = "{milter}"\n'
            f'[mda]\nagent_socket = "{agent}"\nagent_socket_group = ""\n',
        )
        try:
            yield Rig(folder, root, sendmail, stack, sink, milter)
        finally:
            sendmail.stop()
            stack.stop_all()
    if not os.environ.get("MAILWARDEN_KEEP_TEST_ROOT"):
        shutil.rmtree(folder, ignore_errors=True)


# --- the plans ----------------------------------------------------------------------


def test_milter_block_goes_before_the_mailers_of_debians_own_sendmail_mc(
    rig: Rig, tmp_path: Path
) -> None:
    debian = rig.root / "usr/share/sendmail/cf/debian/sendmail.mc"
    etc = tmp_path / "mail"
    etc.mkdir()
    shutil.copy(debian, etc / "sendmail.mc")
    plan = SENDMAIL.plan(rig.ctx(mta_config_dir=etc), "milter")
    [edit] = plan.edits
    lines = (edit.text or "").splitlines()
    begin = next(i for i, line in enumerate(lines) if line.startswith("dnl # BEGIN mailwarden"))
    assert lines[begin + 1] == (
        f"INPUT_MAIL_FILTER(`mailwarden', `S={rig.milter}, F=T, T=S:2m;R:2m;E:5m')dnl"
    )
    assert lines[begin + 2] == "dnl # END mailwarden setup"
    assert lines[begin + 3] == "MAILER_DEFINITIONS"
    # nothing else changes
    rest = lines[:begin] + lines[begin + 3 :]
    assert rest == debian.read_text().splitlines()
    [m4] = plan.commands
    assert m4.argv[:3] == ("sh", "-c", 'm4 "$1" > "$2"')
    assert m4.argv[4:] == (str(etc / "sendmail.mc"), str(etc / "sendmail.cf"))
    assert m4.touches == (etc / "sendmail.cf",)
    [check] = plan.checks
    assert check.argv[1:] == ("-C", str(etc / "sendmail.cf"), "-bt", "-d0.1")
    assert plan.agents == ("milter",)


def test_mda_defines_the_local_mailer_after_every_feature(rig: Rig) -> None:
    plan = SENDMAIL.plan(rig.ctx(), "mda")
    [edit] = plan.edits
    text = edit.text or ""
    program = Path(sys.executable).parent / "mailwarden"
    procmail = shutil.which("procmail", path=f"{rig.search_path}:{os.environ['PATH']}")
    args = (
        f"define(`LOCAL_MAILER_ARGS', `mailwarden mda -c {rig.stack.config} --sender $f "
        f"--recipient $u@$j -- {procmail} -Y -a $h -d $u')dnl\n"
    )
    assert f"define(`LOCAL_MAILER_PATH', `{program}')dnl\n" in text
    assert args in text
    assert "define(`LOCAL_MAILER_FLAGS', `SPhn9')dnl\n" in text
    assert text.index("LOCAL_MAILER_PATH") > text.rindex("FEATURE(")
    assert text.index("LOCAL_MAILER_PATH") < text.index("MAILER(`local')")
    # the local mailer runs as root: the agent's socket stays as configured
    assert plan.agents == ("mda-agent",)
    assert plan.settings == {"mda": {"agent": "require"}}


def test_a_second_plan_changes_nothing(rig: Rig) -> None:
    plan = SENDMAIL.plan(rig.ctx(), "milter")
    [edit] = plan.edits
    edit.path.write_text(edit.text or "")
    again = SENDMAIL.plan(rig.ctx(), "milter")
    assert again.edits == () and again.commands == ()


def test_a_milter_added_by_hand_or_a_missing_mc_is_refused(rig: Rig, tmp_path: Path) -> None:
    mc = rig.config_dir / "sendmail.mc"
    mc.write_text(
        mc.read_text().replace(
            "MAILER(`local')",
            "INPUT_MAIL_FILTER(`mailwarden', `S=local:/x.sock')dnl\nMAILER(`local')",
        )
    )
    with pytest.raises(SetupError, match="already has a mailwarden milter"):
        SENDMAIL.plan(rig.ctx(), "milter")
    with pytest.raises(SetupError, match=r"sendmail\.mc: no such file"):
        SENDMAIL.plan(rig.ctx(mta_config_dir=tmp_path), "milter")


def test_sendmail_not_installed_is_a_clear_error(tmp_path: Path) -> None:
    if any(
        Path(p).exists() for p in ("/usr/libexec/sendmail/sendmail", "/usr/lib/sm.bin/sendmail")
    ):
        pytest.skip("this host has Sendmail installed")
    empty = tmp_path / "bin"
    empty.mkdir()
    config = tmp_path / "mailwarden.toml"
    config.write_text("# test\n")
    ctx = SetupContext(tmp_path / "mail", "/usr/bin/mailwarden", config, path=str(empty))
    # /usr/sbin/sendmail, when there is one, is Postfix's: not taken for Sendmail
    assert SENDMAIL.detect(ctx) is None
    with pytest.raises(SetupError, match="sendmail: not installed"):
        SENDMAIL.plan(ctx, "milter")


# --- applied for real -----------------------------------------------------------------


@contextlib.contextmanager
def _running(rig: Rig, *, milter: bool) -> Iterator[None]:
    """The daemon (and the milter, or else the mda agent), then Sendmail on the
    configuration setup left."""
    rig.stack.start_daemon()
    if milter:
        start_milter_process(rig.stack, rig.milter)
    else:
        # as serve starts it: on the configuration setup left (conf.d included)
        agent = rig.stack._spawn("mda-agent", ["mda-agent", "-c", str(rig.stack.config)])
        sock = str(rig.stack.root / "mda.sock")
        wait_until(lambda: agent.popen.poll() is None and answers(sock), 60, "the mda agent")
    rig.sendmail.start()
    try:
        yield
    except BaseException:
        print(rig.sendmail.output())
        raise
    finally:
        rig.sendmail.stop()
        rig.stack.stop_all()


def test_milter_setup_carries_mail_and_uninstall_restores_every_byte(rig: Rig) -> None:
    original, mw_original = rig.files(), rig.mailwarden_files()
    done = rig.setup("--mode", "milter", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "+INPUT_MAIL_FILTER(`mailwarden'" in done.stdout  # the diff is shown
    assert f"check passed: {rig.search_path}/sendmail -C {rig.config_dir}/sendmail.cf" in (
        done.stdout
    )
    assert "sendmail is not running; skipped" in done.stdout
    assert "INPUT_MAIL_FILTER" not in original["sendmail.cf"][0].decode()
    assert f"Xmailwarden, S={rig.milter}" in (rig.config_dir / "sendmail.cf").read_text()

    again = rig.setup("--mode", "milter", "--yes")
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stdout

    with _running(rig, milter=True):
        port = rig.sendmail.port
        clean, clean_id = make_message(sender=SENDER, to=RCPT)
        assert data_reply(port, SENDER, [RCPT], clean)[0] == 250
        wait_until(lambda: rig.delivered(clean_id), 60, "the clean message at the sink")
        assert b"X-Virus-Status: Clean" in rig.delivered(clean_id)[0]

        infected, infected_id = make_message(sender=SENDER, to=RCPT, attachment=EICAR)
        code, text = data_reply(port, SENDER, [RCPT], infected)
        assert code == 554, text
        assert "Eicar" in text
        assert rig.delivered(infected_id) == []

    gone = rig.setup("--uninstall", "--yes")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert rig.files() == original
    assert rig.mailwarden_files() == mw_original


def test_mda_setup_makes_the_local_mailer_scan_and_uninstalls(rig: Rig) -> None:
    domain = "mda.test"
    mc = rig.config_dir / "sendmail.mc"
    # the site: a local domain, and the test folder below /tmp (sticky) trusted
    site = f"LOCAL_DOMAIN(`{domain}')dnl\ndefine(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl\n"
    mc.write_text(mc.read_text().replace("MAILER(`local')dnl", site + "MAILER(`local')dnl", 1))
    built = subprocess.run(["m4", str(mc)], capture_output=True, check=True, timeout=60)
    rig.sendmail.cf.write_bytes(built.stdout)
    bin_dir, maildir = stand_in_mda(rig.folder / "mda")
    original, mw_original = rig.files(), rig.mailwarden_files()

    done = rig.setup("--mode", "mda", "--yes", search=str(bin_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"+++ {rig.stack.root / 'conf.d' / '50-setup-sendmail.toml'}" in done.stdout
    assert '+agents = ["mda-agent"]' in done.stdout and '+agent = "require"' in done.stdout
    cf = (rig.config_dir / "sendmail.cf").read_text()
    [mailer] = [line for line in cf.splitlines() if line.startswith("Mlocal,")]
    assert f"P={Path(sys.executable).parent / 'mailwarden'}," in mailer
    assert "SPhn9, " in mailer  # Sendmail puts its own flags in front
    assert f"A=mailwarden mda -c {rig.stack.config} --sender $f --recipient $u@$j " in cf

    to = f"nobody@{domain}"
    with _running(rig, milter=False):
        clean, clean_id = make_message(sender=SENDER, to=to)
        assert data_reply(rig.sendmail.port, SENDER, [to], clean)[0] == 250

        wait_until(lambda: any(clean_id.encode() in m for m in stored(maildir)), 60, "the Maildir")
        [data] = [m for m in stored(maildir) if clean_id.encode() in m]
        assert b"X-Virus-Status: Clean" in data

        infected, infected_id = make_message(sender=SENDER, to=to, attachment=EICAR)
        assert data_reply(rig.sendmail.port, SENDER, [to], infected)[0] == 250

        # the default policy after the queue: quarantined, never handed to the MDA
        wait_until(lambda: in_quarantine(rig.stack, infected_id), 60, "EICAR in the quarantine")
        assert all(infected_id.encode() not in m for m in stored(maildir))
        # both were judged by the agent (agent = "require": mda never scans by itself)
        log = rig.stack.procs["mda-agent"].output(100_000)
        records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        judged = [(r["envelope"]["recipients"], r["action"]) for r in records]
        assert judged == [
            ([f"nobody@{HOSTNAME}"], "accept"),
            ([f"nobody@{HOSTNAME}"], "quarantine"),
        ]

    gone = rig.setup("--uninstall", "--yes")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert rig.files() == original
    assert rig.mailwarden_files() == mw_original


def test_a_failing_checker_restores_every_file(rig: Rig) -> None:
    # an administrator's line that only sendmail finds wrong: setup must not leave its
    # own changes on a configuration that does not pass
    mc = rig.config_dir / "sendmail.mc"
    mc.write_text(mc.read_text() + "LOCAL_CONFIG\nO NoSuchOption=1\n")
    original, mw_original = rig.files(), rig.mailwarden_files()
    done = rig.setup("--mode", "milter", "--yes")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "the check failed: " in done.stderr
    assert "unknown option name NoSuchOption" in done.stderr
    assert "every file was restored" in done.stderr
    assert rig.files() == original
    assert rig.mailwarden_files() == mw_original
