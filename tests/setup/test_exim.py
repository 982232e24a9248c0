"""``mailwarden setup --mta exim`` on Debian's stock exim4 configuration, with real Exim.

The plans first (what each mode adds to the split and the unsplit layout,
and what setup refuses), then for every mode and layout: setup on a copy of
the package's ``/etc/exim4`` (``mta_sites.EximSite``), ``update-exim4.conf``
and ``exim -bV`` pass, a second run has nothing to do, and ``--uninstall``
leaves every file byte-identical.  Mail goes through the generated
configuration for the malware ACL (EICAR refused at DATA), the content
filter (clean mail tagged once, EICAR quarantined) and the mda mode (clean
mail handed to the MDA tagged, EICAR quarantined).  Bad input: Exim not
installed, a hand-written exim4.conf, a configuration that is not Debian's
or that setup may not read, settings that would be doubled, and a checker
that fails (every file restored).
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from intercept.harness import EICAR, Stack, free_port, wait_until
from intercept.mail import data_reply, make_message
from intercept.mda.harness import MAIL_USER, give_to_mail_user, write_launcher
from intercept.mda.resident import answers
from mailwarden.setup import INTEGRATIONS, SetupContext, SetupError, apply, uninstall
from setup.mta_sites import (
    LOCAL_DOMAIN,
    EximSite,
    in_quarantine,
    snapshot,
    stand_in_mda,
    stored,
)
from support.exim import require_exim_root
from support.smtp_sink import Sink, smtp_sink

MAILWARDEN = [sys.executable, "-m", "mailwarden"]
SENDER = "alice@sender.example"
RCPT = "bob@remote.example"
EXIM = INTEGRATIONS["exim"]
#: nobody's primary group: deliveries run as nobody here (EximSite.deliver_as)
AGENT_GROUP = "nogroup"


class Rig:
    """A copy of the stock configuration, a sink, and mailwarden's own configuration."""

    def __init__(self, folder: Path, root: Path, sink: Sink, sink_port: int, split: bool) -> None:
        self.folder = folder
        self.sink = sink
        self.site = EximSite.create(folder / "site", root, split=split, relay_port=sink_port)
        self.ports = {name: free_port() for name in ("smtp", "filter", "return", "tcp")}
        # the mda agent's socket: 0660 with the group of the user deliveries run as here
        extra = (
            f'[smtp_filter]\nlisten = "127.0.0.1:{self.ports["filter"]}"\n'
            f'downstream = "127.0.0.1:{self.ports["return"]}"\n'
            f'[mda]\nagent_socket = "{folder / "mw" / "mda.sock"}"\n'
            f'agent_socket_group = "{AGENT_GROUP}"\n'
        )
        self.stack = Stack.create(folder / "mw", extra_toml=extra)
        text = self.stack.config.read_text()
        # Exim asks the daemon as Debian-exim: over TCP, no shared files
        daemon = f'[daemon]\ntcp = "127.0.0.1:{self.ports["tcp"]}"\nsocket_mode = "0666"\n'
        self.stack.config.write_text(text.replace("[daemon]\n", daemon, 1))
        (folder / "mw").chmod(0o755)

    def ctx(self, **extra: object) -> SetupContext:
        values: dict[str, object] = {
            "mta_config_dir": self.site.config_dir,
            "mailwarden": "/usr/bin/mailwarden",
            "mailwarden_config": self.stack.config,
            "path": self.site.search_path,
            "systemd": False,
        }
        values.update(extra)
        return SetupContext(**values)  # type: ignore[arg-type]

    def mailwarden_files(self) -> dict[str, tuple[bytes, int]]:
        return {k: v for k, v in snapshot(self.stack.config.parent).items() if k.endswith(".toml")}

    def delivered(self, mid: str) -> list[bytes]:
        return [m.data for m in self.sink.messages if mid.encode() in m.data]


@pytest.fixture
def make_rig() -> Iterator[Callable[[bool], Rig]]:
    root = require_exim_root()
    rigs: list[Rig] = []
    with smtp_sink() as (sink, sink_port):

        def make(split: bool) -> Rig:
            # Debian-exim must reach the spool: not below pytest's 0700 folder
            folder = Path(tempfile.mkdtemp(prefix="mwsetup-exim-"))
            folder.chmod(0o755)
            rig = Rig(folder, root, sink, sink_port, split)
            rigs.append(rig)
            return rig

        try:
            yield make
        finally:
            for rig in rigs:
                rig.site.stop()
                rig.stack.stop_all()
                if not os.environ.get("MAILWARDEN_KEEP_TEST_ROOT"):
                    shutil.rmtree(rig.folder, ignore_errors=True)


def _lines() -> tuple[list[str], Callable[[str], None]]:
    out: list[str] = []
    return out, out.append


# --- the plans ----------------------------------------------------------------------


def test_content_filter_adds_four_files_to_the_split_configuration(
    make_rig: Callable[[bool], Rig],
) -> None:
    rig = make_rig(True)
    plan = EXIM.plan(rig.ctx(), "content-filter")
    conf_d = rig.site.config_dir / "conf.d"
    texts = {str(e.path.relative_to(conf_d)): e.text or "" for e in plan.edits}
    assert sorted(texts) == [
        "acl/25_mailwarden",
        "main/00_mailwarden",
        "router/050_mailwarden",
        "transport/30_mailwarden",
    ]
    assert f"MAILWARDEN_RETURN_PORT = {rig.ports['return']}\n" in texts["main/00_mailwarden"]
    assert "daemon_smtp_ports = smtp : MAILWARDEN_RETURN_PORT" in texts["main/00_mailwarden"]
    router = texts["router/050_mailwarden"]
    assert f"route_list = * 127.0.0.1::{rig.ports['filter']} byname" in router
    assert "condition = ${if !={$received_port}{MAILWARDEN_RETURN_PORT}}" in router
    assert "no_verify" in router  # recipient verification stays with Debian's routers
    assert "!hosts = <; 127.0.0.0/8 ; ::1\n" in texts["acl/25_mailwarden"]
    # [smtp_filter] scan_timeout 150 + 2 x downstream_timeout 300 + 60
    assert "  final_timeout = 810s\n" in texts["transport/30_mailwarden"]
    # the router sorts right after the section header, before Debian's first router
    names = sorted([*(p.name for p in (conf_d / "router").iterdir()), "050_mailwarden"])
    assert names[:2] == ["00_exim4-config_header", "050_mailwarden"]
    [command] = plan.commands
    generated = rig.site.config_dir / "config.autogenerated"
    assert command.argv[1:] == ("-d", str(rig.site.config_dir), "-o", str(generated))
    assert command.touches == (generated,)
    [check] = plan.checks
    assert check.argv[1:] == ("-C", str(generated), "-bV")
    assert plan.agents == ("smtp-filter",)


def test_the_unsplit_template_gets_marked_blocks_where_each_part_belongs(
    make_rig: Callable[[bool], Rig],
) -> None:
    rig = make_rig(False)
    plan = EXIM.plan(rig.ctx(), "mda")
    [edit] = plan.edits
    lines = (edit.text or "").splitlines()
    router = lines.index("# BEGIN mailwarden setup (router)")
    end = lines.index("# END mailwarden setup (router)")
    assert lines[end + 1] == "local_user:"  # after the aliases and .forward, before local_user
    assert router > lines.index("begin routers")
    transport = lines.index("# BEGIN mailwarden setup (transport)")
    assert lines[transport - 1] == "begin transports"
    body = "\n".join(lines[transport:])
    assert '--sender "\\$SENDER" --recipient "\\$RECIPIENT"' in body
    assert f"mda -c {rig.stack.config} " in body
    # the delivery reaches the mda agent's 0660 socket through its group
    assert f"\n  user = $local_part\n  group = {AGENT_GROUP}\n" in body
    assert plan.agents == ("mda-agent",)
    assert plan.settings == {"mda": {"agent": "require"}}


def test_mda_without_the_agents_group_is_refused_or_falls_back_to_0666(
    make_rig: Callable[[bool], Rig],
) -> None:
    rig = make_rig(True)
    config = rig.stack.config
    text = config.read_text()
    config.write_text(text.replace(AGENT_GROUP, "no-such-group-mw"))
    with pytest.raises(SetupError, match="agent_socket_group 'no-such-group-mw' does not exist"):
        EXIM.plan(rig.ctx(), "mda")
    # no group: the agent's own primary group, which Exim cannot be told: the socket is 0666
    config.write_text(text.replace(f'"{AGENT_GROUP}"', '""'))
    plan = EXIM.plan(rig.ctx(), "mda")
    assert plan.settings == {"mda": {"agent": "require", "agent_socket_mode": "0666"}}
    assert all("group =" not in (e.text or "") for e in plan.edits)


def test_the_malware_acl_asks_the_daemon_over_tcp_when_it_listens_there(
    make_rig: Callable[[bool], Rig],
) -> None:
    rig = make_rig(True)
    plan = EXIM.plan(rig.ctx(), "malware-acl")
    texts = {e.path.name: e.text or "" for e in plan.edits}
    assert f"av_scanner = clamd:127.0.0.1 {rig.ports['tcp']}\n" in texts["00_mailwarden"]
    acl = rig.site.config_dir / "mailwarden_acl_check_data"
    assert f"CHECK_DATA_LOCAL_ACL_FILE = {acl}\n" in texts["00_mailwarden"]
    assert "deny    malware = *\n" in texts[acl.name]
    assert "defer_ok" not in texts[acl.name].replace("no /defer_ok", "")

    rig.stack.config.write_text(rig.stack.config.read_text().replace("tcp = ", "# tcp = ", 1))
    texts = {e.path.name: e.text or "" for e in EXIM.plan(rig.ctx(), "malware-acl").edits}
    assert f"av_scanner = clamd:{rig.stack.socket}\n" in texts["00_mailwarden"]


@pytest.mark.parametrize(
    ("mode", "line"),
    [
        ("content-filter", "daemon_smtp_ports = smtp : 587"),
        ("malware-acl", "av_scanner = clamd:/run/clamav/clamd.ctl"),
        ("malware-acl", "CHECK_DATA_LOCAL_ACL_FILE = /etc/exim4/local_data_acl"),
    ],
)
def test_a_setting_made_by_hand_is_not_made_twice(
    make_rig: Callable[[bool], Rig], mode: str, line: str
) -> None:
    rig = make_rig(True)
    (rig.site.config_dir / "conf.d/main/000_localmacros").write_text(f"{line}\n")
    with pytest.raises(SetupError, match=f"already sets .*{line.split(maxsplit=1)[0]}"):
        EXIM.plan(rig.ctx(), mode)


def test_a_hand_written_exim4_conf_or_a_foreign_folder_is_refused(
    make_rig: Callable[[bool], Rig], tmp_path: Path
) -> None:
    rig = make_rig(True)
    (rig.site.config_dir / "exim4.conf").write_text("# by hand\n")
    with pytest.raises(SetupError, match="hand-written"):
        EXIM.plan(rig.ctx(), "mda")
    with pytest.raises(SetupError, match=r"update-exim4\.conf\.conf: no such file"):
        EXIM.plan(rig.ctx(mta_config_dir=tmp_path), "mda")


def test_exim_not_installed_is_a_clear_error_and_changes_nothing(tmp_path: Path) -> None:
    if shutil.which("exim4") or shutil.which("exim"):
        pytest.skip("this host has Exim installed")
    empty = tmp_path / "bin"
    empty.mkdir()
    config = tmp_path / "mailwarden.toml"
    config.write_text("# test\n")
    ctx = SetupContext(tmp_path / "etc-exim4", "/usr/bin/mailwarden", config, path=str(empty))
    assert EXIM.detect(ctx) is None
    done = subprocess.run(
        [
            *MAILWARDEN,
            "setup",
            "--mta",
            "exim",
            "--mode",
            "malware-acl",
            "--yes",
            "--no-service",
            "--search-path",
            str(empty),
            "--mta-config-dir",
            str(tmp_path / "etc-exim4"),
            "-c",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 2
    assert "exim: not installed" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "mailwarden.toml"]


# --- applied for real -----------------------------------------------------------------


@contextlib.contextmanager
def _logs_on_failure(rig: Rig) -> Iterator[None]:
    try:
        yield
    except BaseException:
        print(rig.site.output())
        raise


@pytest.mark.parametrize("split", [True, False], ids=["split", "unsplit"])
@pytest.mark.parametrize("mode", ["content-filter", "malware-acl", "mda"])
def test_setup_passes_exims_check_and_uninstall_restores_every_byte(
    make_rig: Callable[[bool], Rig], mode: str, split: bool
) -> None:
    rig = make_rig(split)
    ctx = rig.ctx()
    found = EXIM.detect(ctx)
    assert found is not None and found.version.startswith("4.") and not found.running
    original, mw_original = rig.site.snapshot(), rig.mailwarden_files()

    out, say = _lines()
    manifest = apply(EXIM.plan(ctx, mode), ctx, ask=None, out=say)
    assert manifest is not None and manifest.state == "complete"
    assert any(line.startswith("check passed: ") and line.endswith(" -bV") for line in out)
    assert rig.site.generated.exists()
    assert rig.site.snapshot() != original

    out, say = _lines()
    assert apply(EXIM.plan(ctx, mode), ctx, ask=None, out=say) is None
    assert any("nothing to do" in line for line in out), out

    assert uninstall(ctx, "exim", ask=None, out=print) == []
    assert rig.site.snapshot() == original
    assert rig.mailwarden_files() == mw_original


@pytest.mark.parametrize("split", [True, False], ids=["split", "unsplit"])
def test_a_failing_checker_restores_every_file(
    make_rig: Callable[[bool], Rig], split: bool
) -> None:
    rig = make_rig(split)
    # an administrator's mistake that only exim -bV finds: setup must not leave its
    # own changes on a configuration that does not pass
    if split:
        (rig.site.config_dir / "conf.d/main/000_localmacros").write_text("no_such_option = 1\n")
    else:
        template = rig.site.config_dir / "exim4.conf.template"
        template.write_text("no_such_option = 1\n" + template.read_text())
    original, mw_original = rig.site.snapshot(), rig.mailwarden_files()
    ctx = rig.ctx()
    with pytest.raises(SetupError, match=r"(?s)the check failed: .* -bV.*every file was restored"):
        apply(EXIM.plan(ctx, "content-filter"), ctx, ask=None, out=print)
    assert rig.site.snapshot() == original
    assert rig.mailwarden_files() == mw_original


def test_malware_acl_refuses_eicar_at_data_through_the_generated_configuration(
    make_rig: Callable[[bool], Rig],
) -> None:
    rig = make_rig(True)
    ctx = rig.ctx()
    apply(EXIM.plan(ctx, "malware-acl"), ctx, ask=None, out=print)
    rig.stack.start_daemon()
    rig.site.start(rig.ports["smtp"])
    with _logs_on_failure(rig):
        clean, clean_id = make_message(sender=SENDER, to=RCPT)
        assert data_reply(rig.ports["smtp"], SENDER, [RCPT], clean)[0] == 250
        wait_until(lambda: rig.delivered(clean_id), 60, "the clean message at the sink")

        infected, infected_id = make_message(sender=SENDER, to=RCPT, attachment=EICAR)
        code, text = data_reply(rig.ports["smtp"], SENDER, [RCPT], infected)
        assert code == 550, text
        assert "Infected: Eicar-Test-Signature" in text
        assert rig.delivered(infected_id) == []


def test_content_filter_carries_mail_through_smtp_filter_and_back(
    make_rig: Callable[[bool], Rig],
) -> None:
    rig = make_rig(True)
    ctx = rig.ctx()
    apply(EXIM.plan(ctx, "content-filter"), ctx, ask=None, out=print)
    rig.stack.start_daemon()
    ports = rig.ports
    rig.stack.start_agent(
        "filter", "smtp-filter", ports["filter"], "--downstream", f"127.0.0.1:{ports['return']}"
    )
    rig.site.start(ports["smtp"], ports["return"])
    with _logs_on_failure(rig):
        clean, clean_id = make_message(sender=SENDER, to=RCPT)
        assert data_reply(ports["smtp"], SENDER, [RCPT], clean)[0] == 250
        wait_until(lambda: rig.delivered(clean_id), 60, "the clean message at the sink")
        [data] = rig.delivered(clean_id)
        assert data.count(b"X-Virus-Status: Clean") == 1

        infected, infected_id = make_message(sender=SENDER, to=RCPT, attachment=EICAR)
        assert data_reply(ports["smtp"], SENDER, [RCPT], infected)[0] == 250
        wait_until(lambda: in_quarantine(rig.stack, infected_id), 60, "EICAR in the quarantine")
        wait_until(lambda: rig.site.queued() == [], 60, "an empty Exim queue")
        assert rig.delivered(infected_id) == []


def test_mda_hands_local_mail_to_mailwarden_mda_through_the_generated_configuration(
    make_rig: Callable[[bool], Rig],
) -> None:
    rig = make_rig(False)
    launcher = rig.folder / "bin" / "mailwarden"
    write_launcher(launcher)
    bin_dir, maildir = stand_in_mda(rig.folder / "mda")
    give_to_mail_user(*(maildir / sub for sub in ("tmp", "new", "cur")))
    # the store is root's, in a folder the delivering user cannot enter: what gets
    # quarantined was written by the agent (which runs as root here)
    store = rig.folder / "mw" / "store"
    store.mkdir(mode=0o700)
    ctx = rig.ctx(mailwarden=str(launcher), path=f"{bin_dir}:{rig.site.search_path}")
    apply(EXIM.plan(ctx, "mda"), ctx, ask=None, out=print)
    assert (rig.stack.config.parent / "conf.d" / "50-setup-exim.toml").exists()
    rig.stack.start_daemon()
    # the agent as serve starts it: on the configuration setup left (conf.d included)
    agent = rig.stack._spawn("mda-agent", ["mda-agent", "-c", str(rig.stack.config)])
    sock = rig.folder / "mw" / "mda.sock"
    wait_until(lambda: agent.popen.poll() is None and answers(str(sock)), 60, "the mda agent")
    assert stat.S_IMODE(sock.stat().st_mode) == 0o660
    assert sock.stat().st_gid == grp.getgrnam(AGENT_GROUP).gr_gid
    rig.site.deliver_as(MAIL_USER)
    rig.site.start(rig.ports["smtp"])
    to = f"{MAIL_USER}@{LOCAL_DOMAIN}"
    with _logs_on_failure(rig):
        clean, clean_id = make_message(sender=SENDER, to=to)
        assert data_reply(rig.ports["smtp"], SENDER, [to], clean)[0] == 250
        wait_until(lambda: any(clean_id.encode() in m for m in stored(maildir)), 60, "the Maildir")
        [data] = [m for m in stored(maildir) if clean_id.encode() in m]
        assert b"X-Virus-Status: Clean" in data

        infected, infected_id = make_message(sender=SENDER, to=to, attachment=EICAR)
        assert data_reply(rig.ports["smtp"], SENDER, [to], infected)[0] == 250
        wait_until(lambda: in_quarantine(rig.stack, infected_id), 60, "EICAR in the quarantine")
        assert all(infected_id.encode() not in m for m in stored(maildir))
    assert store.stat().st_uid == 0 and stat.S_IMODE(store.stat().st_mode) == 0o700
    # both deliveries were judged by the agent: its per-message records name them
    log = agent.output(100_000)
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    judged = [(r["envelope"]["recipients"], r["action"]) for r in records]
    assert judged == [([to], "accept"), ([to], "quarantine")], log


def test_a_configuration_setup_may_not_read_changes_nothing(
    make_rig: Callable[[bool], Rig],
) -> None:
    rig = make_rig(True)
    launcher = rig.folder / "bin" / "mailwarden"
    write_launcher(launcher)
    (rig.site.config_dir / "update-exim4.conf.conf").chmod(0o600)  # root's; setup runs as nobody
    original = rig.site.snapshot()
    done = subprocess.run(
        [
            str(launcher),
            "setup",
            "--mta",
            "exim",
            "--mode",
            "malware-acl",
            "--yes",
            "--no-service",
            "--mta-config-dir",
            str(rig.site.config_dir),
            "--search-path",
            rig.site.search_path,
            "-c",
            str(rig.stack.config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
        user=MAIL_USER,
        cwd="/",
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "update-exim4.conf.conf: cannot read: Permission denied" in done.stderr
    assert rig.site.snapshot() == original
