"""``mailwarden setup --mta postfix`` on Debian's stock configuration, with real Postfix.

For each mode: setup on a copy of the stock configuration (``postfix_site``),
``postfix check`` passes, a second run has nothing to do, Postfix and
``mailwarden serve`` (which starts the agent setup enabled in conf.d) carry a
clean message to its mailbox tagged and keep EICAR out (quarantined after
queue, refused with 554 before queue), and ``--uninstall`` leaves every file
byte-identical with its original mode.  Then the bad cases: a checker that
fails (everything restored), a configuration edited after setup (kept, never
discarded by ``--yes``), an interrupted run (rolled back by the next), a
folder that is not Postfix's, and a configuration setup may not read.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from intercept.harness import EICAR, free_port, port_open, wait_until
from intercept.mail import data_reply, make_message, send
from intercept.mda.harness import MAIL_USER, give_to_mail_user, write_launcher
from intercept.mda.resident import answers
from mailwarden.daemon import DaemonClient
from mailwarden.setup import INTEGRATIONS, SetupContext, SetupError
from setup.mta_trees import run_setup
from setup.postfix_site import DOMAIN, LOCAL_DOMAIN, STOCK_DIR, STOCK_MAIN, PostfixSite
from support.tools import missing

MAILWARDEN = [sys.executable, "-m", "mailwarden"]


def _need_postfix() -> None:
    if shutil.which("postfix") is None and not Path("/usr/sbin/postfix").exists():
        missing("postfix is not installed (scripts/bootstrap installs it)")
    if os.geteuid() != 0:
        missing("a private Postfix instance needs root")
    if shutil.which("procmail") is None:
        missing("procmail is not installed (scripts/bootstrap installs it)")


@dataclass
class Rig:
    root: Path
    site: PostfixSite
    config: Path
    launcher: Path
    ports: dict[str, int]

    def setup(
        self,
        *args: str,
        config_dir: Path | None = None,
        user: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """The CLI on this rig (``user``: as that user, through the launcher)."""
        return run_setup(
            "postfix",
            config_dir or self.site.config_dir,
            self.config,
            self.launcher,
            "--smtp-service",
            self.site.smtp_service,
            *args,
            argv0=(str(self.launcher),) if user else tuple(MAILWARDEN),
            user=user,
        )

    def mailwarden_files(self) -> dict[str, bytes]:
        folder = self.config.parent
        return {
            str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix == ".toml"
        }

    def state(self) -> Path:
        return self.site.root / "etc.mailwarden-setup" / "postfix" / "manifest.json"


def _config(root: Path, ports: dict[str, int]) -> Path:
    folder = root / "mw"
    folder.mkdir()
    folder.chmod(0o755)
    store = folder / "store"
    # mailwarden mda writes the store as the recipient (nobody), as docs/mda.md says
    give_to_mail_user(store, store / "quarantine")
    (store / "quarantine").chmod(0o700)
    text = f"""\
[engine]
databases = []
cache_dir = ""

[store]
database = "{store / "mailwarden.sqlite3"}"
spool_dir = "{store / "quarantine"}"

[daemon]
socket = "{folder / "d.sock"}"
socket_group = ""
socket_mode = "0666"
pid_file = ""
workers = 1

[release]
secret_file = "{folder / "release.key"}"

[serve]
user = "root"
restart_delay = 0.1

[smtp_filter]
listen = "127.0.0.1:{ports["filter"]}"
downstream = "127.0.0.1:{ports["reinject"]}"

[smtp_proxy]
listen = "127.0.0.1:{ports["proxy"]}"
downstream = "127.0.0.1:{ports["reinject"]}"

[milter]
socket = "inet:{ports["milter"]}@127.0.0.1"

[mda]
agent_socket = "{folder / "mda.sock"}"
agent_socket_group = ""
"""
    config = folder / "mailwarden.toml"
    config.write_text(text)
    config.chmod(0o644)
    return config


@pytest.fixture
def rig() -> Iterator[Rig]:
    _need_postfix()
    # Postfix's users and nobody must reach folders below it: not under pytest's 0700 root
    root = Path(tempfile.mkdtemp(prefix="mwsetup-"))
    root.chmod(0o755)
    ports = {name: free_port() for name in ("filter", "proxy", "reinject", "milter")}
    site = PostfixSite.create(root / "postfix")
    launcher = root / "bin" / "mailwarden"
    write_launcher(launcher)
    rig = Rig(root, site, _config(root, ports), launcher, ports)
    # the store is created by its user first; serve (root) would make it root's
    _quarantined(rig, as_user=MAIL_USER)
    try:
        yield rig
    finally:
        site.stop()
        if not os.environ.get("MAILWARDEN_KEEP_TEST_ROOT"):
            shutil.rmtree(root, ignore_errors=True)


class Serve:
    """``mailwarden serve`` on the rig's configuration, stopped by its PID."""

    def __init__(self, rig: Rig) -> None:
        self.log = rig.root / "serve.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [*MAILWARDEN, "serve", "-c", str(rig.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=rig.root,
                start_new_session=True,
            )
        self.socket = str(rig.config.parent / "d.sock")

    def wait(self, port: int | None) -> None:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited: {self.output()}")
            try:
                if not DaemonClient(self.socket, timeout=2, reuse=False).ping():
                    return False
            except Exception:
                return False
            return port is None or port_open(port)

        wait_until(up, 120, "mailwarden serve")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def _quarantined(rig: Rig, *, as_user: str | None = None) -> list[dict[str, object]]:
    done = subprocess.run(
        [str(rig.launcher), "quarantine", "list", "-c", str(rig.config), "--json"],
        capture_output=True,
        check=True,
        timeout=120,
        user=as_user,
        cwd="/",
    )
    return list(json.loads(done.stdout or b"[]"))


AGENT_PORT = {"content-filter": "filter", "proxy": "proxy", "milter": "milter", "mda": None}
AGENT = {
    "content-filter": "smtp-filter",
    "proxy": "smtp-proxy",
    "milter": "milter",
    "mda": "mda-agent",
}


def _store_only_root_may_write(rig: Rig) -> None:
    """The store becomes root's (serve's user here), in a folder ``nobody`` cannot enter:
    a delivery run as ``nobody`` that gets its mail stored or quarantined went through
    the agent."""
    store = rig.config.parent / "store"
    for path in (store, *store.rglob("*")):
        os.chown(path, 0, 0)
    store.chmod(0o700)


@pytest.mark.parametrize("mode", ["content-filter", "proxy", "milter", "mda"])
def test_setup_carries_mail_and_uninstall_restores_every_byte(rig: Rig, mode: str) -> None:
    original = rig.site.snapshot()
    mw_original = rig.mailwarden_files()
    # one mode is set up on a running Postfix: the reload must make it take effect
    live = mode == "milter"
    reload = f"postfix -c {rig.site.config_dir} reload"
    if live:
        rig.site.start()

    done = rig.setup("--mode", mode, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"check passed: postfix -c {rig.site.config_dir} check" in done.stdout
    assert "postconf -c" in done.stdout  # the commands are shown as they run
    # the agent is enabled in Postfix's own drop-in, shown as a diff
    drop_in = rig.config.parent / "conf.d" / "50-setup-postfix.toml"
    assert f"+++ {drop_in}" in done.stdout
    assert f'+agents = ["{AGENT[mode]}"]' in done.stdout
    if mode == "mda":
        # local(8) runs the command as each recipient, primary group only
        assert '+agent = "require"\n+agent_socket_mode = "0666"' in done.stdout
    if live:
        assert f"ran: {reload}" in done.stdout
    else:
        assert f"postfix is not running; skipped: {reload}" in done.stdout
    manifest = json.loads(rig.state().read_text())
    assert manifest["state"] == "complete" and manifest["mode"] == mode
    assert rig.site.snapshot() != original

    again = rig.setup("--mode", mode, "--yes")
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stdout

    if mode == "mda":
        _store_only_root_may_write(rig)
    if not live:
        rig.site.start()
    serve = Serve(rig)
    try:
        agent = AGENT_PORT[mode]
        serve.wait(None if agent is None else rig.ports[agent])
        if mode == "mda":
            sock = rig.config.parent / "mda.sock"
            wait_until(lambda: answers(str(sock)), 60, "the mda agent's socket")
            assert stat.S_IMODE(sock.stat().st_mode) == 0o666
        _mail_takes_its_path(rig, mode)
    except BaseException:
        print(serve.output(), rig.site.log())
        raise
    finally:
        serve.stop()
        if not live:
            rig.site.stop()

    gone = rig.setup("--uninstall", "--yes")
    rig.site.stop()
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert (f"ran: {reload}" in gone.stdout) is live
    assert rig.site.snapshot() == original
    assert rig.mailwarden_files() == mw_original
    assert not rig.state().exists()


def _mail_takes_its_path(rig: Rig, mode: str) -> None:
    site = rig.site
    if mode == "mda":
        to = f"nobody@{LOCAL_DOMAIN}"
        box = site.local_mailbox
    else:
        to = f"alice@{DOMAIN}"

        def box() -> list[object]:
            return site.mailbox("alice")  # type: ignore[return-value]

    clean, clean_id = make_message(sender="sender@remote.example", to=to)
    send(site.smtp_port, "sender@remote.example", [to], clean)
    wait_until(lambda: any(m["Message-ID"] == clean_id for m in box()), 90, "the clean message")
    delivered = next(m for m in box() if m["Message-ID"] == clean_id)
    assert "Clean" in str(delivered["X-Virus-Status"]), delivered
    assert delivered["X-Virus-Scanned"]

    subject = f"eicar {uuid.uuid4().hex}"
    infected, infected_id = make_message(
        sender="sender@remote.example", to=to, subject=subject, attachment=EICAR
    )
    if mode in ("proxy", "milter"):
        code, text = data_reply(site.smtp_port, "sender@remote.example", [to], infected)
        assert code == 554, text
        assert "Eicar" in text
    else:
        send(site.smtp_port, "sender@remote.example", [to], infected)
        # mda: the agent (root) wrote the quarantine; the recipient could not have
        as_user = None

        def held() -> bool:
            return any(e.get("subject") == subject for e in _quarantined(rig, as_user=as_user))

        wait_until(held, 90, "EICAR in the quarantine")
    assert all(m["Message-ID"] != infected_id for m in box())
    if mode == "mda":
        store = rig.config.parent / "store"
        assert store.stat().st_uid == 0 and stat.S_IMODE(store.stat().st_mode) == 0o700
        assert (store / "mailwarden.sqlite3").stat().st_uid == 0


def test_a_failing_checker_restores_every_file(rig: Rig) -> None:
    # a problem postfix check finds (an administrator's, not setup's): setup must not
    # leave its own changes behind on a configuration that does not pass
    subprocess.run(
        ["postconf", "-c", str(rig.site.config_dir), "-e", "daemon_directory=/nonexistent/mw"],
        check=True,
        timeout=60,
    )
    original = rig.site.snapshot()
    mw_original = rig.mailwarden_files()
    done = rig.setup("--mode", "content-filter", "--yes")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "the check failed: postfix -c" in done.stderr
    assert "every file was restored" in done.stderr
    assert rig.site.snapshot() == original
    assert rig.mailwarden_files() == mw_original
    assert not rig.state().exists()


def test_an_edit_after_setup_is_kept_by_yes_and_shown(rig: Rig) -> None:
    from mailwarden.setup import SetupContext, uninstall

    original = rig.site.snapshot()
    assert rig.setup("--mode", "milter", "--yes").returncode == 0
    subprocess.run(
        [
            "postconf",
            "-c",
            str(rig.site.config_dir),
            "-e",
            "smtpd_banner=$myhostname ESMTP local edit",
        ],
        check=True,
        timeout=60,
    )
    status = rig.setup("--status")
    assert f"{rig.site.config_dir / 'main.cf'}: edited since setup" in status.stdout

    kept = rig.setup("--uninstall", "--yes")
    assert kept.returncode == 1
    assert "+smtpd_banner = $myhostname ESMTP local edit" in kept.stdout
    assert "never discards" in kept.stdout
    assert "local edit" in (rig.site.config_dir / "main.cf").read_text()

    # the administrator agrees: the original comes back, byte for byte
    ctx = SetupContext(
        mta_config_dir=rig.site.config_dir,
        mailwarden=str(rig.launcher),
        mailwarden_config=rig.config,
        systemd=False,
    )
    asked: list[str] = []
    assert uninstall(ctx, "postfix", ask=lambda q: asked.append(q) or True, out=print) == []
    assert asked[0] == "Undo the setup?" and "main.cf" in asked[1]
    assert rig.site.snapshot() == original


_INTERRUPT = """
import sys
from dataclasses import replace
from pathlib import Path
from mailwarden.setup import INTEGRATIONS, Command, SetupContext, apply
etc, config, launcher, service = sys.argv[1:5]
ctx = SetupContext(Path(etc), launcher, Path(config), systemd=False, smtp_service=service)
plan = INTEGRATIONS["postfix"].plan(ctx, "content-filter")
plan = replace(plan, commands=(*plan.commands, Command(("sleep", "120"))))
apply(plan, ctx, ask=None, out=lambda line: None, running=False)
"""


def test_an_interrupted_run_is_rolled_back_by_the_next(rig: Rig) -> None:
    original = rig.site.snapshot()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _INTERRUPT,
            str(rig.site.config_dir),
            str(rig.config),
            str(rig.launcher),
            rig.site.smtp_service,
        ],
        start_new_session=True,
    )
    try:
        # killed while the plan's last step runs: postconf has already rewritten main.cf
        wait_until(
            lambda: "content_filter" in (rig.site.config_dir / "main.cf").read_text(),
            120,
            "setup to edit main.cf",
        )
        wait_until(lambda: rig.state().exists(), 30, "the manifest")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert json.loads(rig.state().read_text())["state"] == "applying"
    status = rig.setup("--status")
    assert "INTERRUPTED" in status.stdout

    done = rig.setup("--mode", "content-filter", "--dry-run")
    # a dry run says so, and repairs nothing
    assert "did not finish" in done.stdout and "nothing was changed" in done.stdout
    assert json.loads(rig.state().read_text())["state"] == "applying"

    gone = rig.setup("--uninstall", "--yes")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "did not finish" in gone.stdout
    assert rig.site.snapshot() == original
    assert not rig.state().exists()


def test_a_folder_without_postfix_configuration_is_refused(rig: Rig, tmp_path: Path) -> None:
    empty = tmp_path / "not-postfix"
    empty.mkdir()
    done = rig.setup("--mode", "milter", "--yes", config_dir=empty)
    assert done.returncode == 2
    assert f"{empty}/main.cf: no such file" in done.stderr
    assert list(empty.iterdir()) == []


def test_a_configuration_setup_may_not_read_changes_nothing(rig: Rig) -> None:
    (rig.site.config_dir / "main.cf").chmod(0o600)  # root's; setup runs as nobody
    original = rig.site.snapshot()
    state = str(rig.root / "out-state")
    done = rig.setup("--mode", "milter", "--yes", "--state-dir", state, user=MAIL_USER)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "main.cf or master.cf is not readable" in done.stderr
    assert rig.site.snapshot() == original


@pytest.fixture
def stock(tmp_path: Path) -> Path:
    """Debian's stock configuration, untouched (a plan only reads it)."""
    _need_postfix()
    etc = tmp_path / "etc-postfix"
    shutil.copytree(STOCK_DIR, etc, symlinks=True)
    if not (etc / "main.cf").exists():
        shutil.copyfile(STOCK_MAIN, etc / "main.cf")
    return etc


def _plan(etc: Path, mode: str, toml: str = "", **ctx: object) -> list[str]:
    config = etc.parent / "mailwarden.toml"
    config.write_text(toml)
    context = SetupContext(etc, "/usr/bin/mailwarden", config, systemd=False, **ctx)  # type: ignore[arg-type]
    plan = INTEGRATIONS["postfix"].plan(context, mode)
    return [shlex.join(c.argv) for c in plan.commands] + [
        f"{section}.{key}={value}"
        for section, keys in plan.settings.items()
        for key, value in keys.items()
    ]


def test_lmtp_content_filter_uses_the_lmtp_transport(stock: Path) -> None:
    commands = "\n".join(_plan(stock, "content-filter", "[smtp_filter]\nlmtp = true\n"))
    assert "scanlmtp/unix=scanlmtp unix - - n - 10 lmtp" in commands
    assert "scanlmtp/unix/lmtp_send_xforward_command=yes" in commands
    assert "content_filter=scanlmtp:[127.0.0.1]:10025" in commands


def test_a_chrooted_smtpd_gets_the_milter_on_loopback_tcp(stock: Path) -> None:
    # Debian's smtpd is chrooted: the default unix socket under /run is out of its reach
    lines = _plan(stock, "milter")
    assert "milter.socket=inet:8890@127.0.0.1" in lines
    assert any(line.endswith("smtpd_milters=inet:127.0.0.1:8890") for line in lines)


def test_proxy_needs_an_smtp_service(stock: Path) -> None:
    with pytest.raises(SetupError, match=r"no 127\.0\.0\.1:2525/inet service"):
        _plan(stock, "proxy", smtp_service="127.0.0.1:2525")
    lines = _plan(stock, "proxy")  # Debian's "smtp inet" service
    assert any("smtp/inet/smtpd_proxy_filter=127.0.0.1:10025" in line for line in lines)
    assert any("smtp/inet/smtpd_proxy_timeout=180s" in line for line in lines)


def test_a_maildir_downstream_cannot_be_postfix_reinjection(stock: Path) -> None:
    with pytest.raises(SetupError, match="needs the re-injection server as HOST:PORT"):
        _plan(stock, "content-filter", '[smtp_filter]\ndownstream = "maildir:/srv/mail"\n')


def test_other_milters_stay_and_another_content_filter_is_refused(stock: Path) -> None:
    subprocess.run(
        [
            "postconf",
            "-c",
            str(stock),
            "-e",
            "smtpd_milters=inet:127.0.0.1:8891",
            "non_smtpd_milters=$smtpd_milters",
            "content_filter=smtp-amavis:[127.0.0.1]:10024",
        ],
        check=True,
        timeout=60,
    )
    lines = _plan(stock, "milter", '[milter]\nsocket = "inet:8899@127.0.0.1"\n')
    assert any(
        line.endswith("-e 'smtpd_milters=inet:127.0.0.1:8891, inet:127.0.0.1:8899'")
        for line in lines
    ), lines
    # non_smtpd_milters follows smtpd_milters: it gets ours through it, not twice
    assert not any("non_smtpd_milters" in line for line in lines), lines
    with pytest.raises(SetupError, match="content_filter is already smtp-amavis"):
        _plan(stock, "content-filter")


def test_mda_enables_the_agent_with_a_socket_every_recipient_reaches(
    stock: Path, tmp_path: Path
) -> None:
    closed = tmp_path / "run-mw"
    closed.mkdir(mode=0o750)
    config = stock.parent / "mailwarden.toml"
    config.write_text(f'[mda]\nagent_socket = "{closed / "mda.sock"}"\nagent_socket_group = ""\n')
    plan = INTEGRATIONS["postfix"].plan(
        SetupContext(stock, "/usr/bin/mailwarden", config, systemd=False), "mda"
    )
    assert plan.agents == ("mda-agent",)
    # local(8) gives the command the recipient's primary group only: no group covers all
    assert plan.settings == {"mda": {"agent": "require", "agent_socket_mode": "0666"}}
    # the socket's folder is closed to others: the plan says what to open
    [note] = [n for n in plan.notes if "searchable by others" in n]
    assert f"make {closed}" in note, note
