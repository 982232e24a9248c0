"""The generic machinery: show, ask, back up, apply, check, roll back, uninstall.

A toy plan (files in a temporary folder, commands that are real programs:
``cp``, ``sh``, ``sleep``) stands in for an MTA so each path is exercised
without one; tests/setup/test_postfix.py does the same with real Postfix.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from mailwarden.setup import (
    INTEGRATIONS,
    Command,
    FileEdit,
    Plan,
    SetupCancelled,
    SetupContext,
    SetupError,
    apply,
    available,
    recover,
    state_dir,
    status,
    uninstall,
)
from mailwarden.setup.manifest import load_manifest, locked

Ctx = Callable[..., SetupContext]


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mode)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    d = tmp_path / "etc-toy"
    d.mkdir()
    (d / "main.conf").write_text("a = 1\nb = 2\n")
    (d / "main.conf").chmod(0o640)
    (d / "source").write_text("generated\n")
    return d


def _plan(etc: Path, *, check: tuple[str, ...] = ("true",), agents: tuple[str, ...] = ()) -> Plan:
    return Plan(
        mta="toy",
        mode="filter",
        edits=(
            FileEdit(etc / "main.conf", "a = 1\nb = 2\nfilter = yes\n", why="turn the filter on"),
            FileEdit(etc / "new.d" / "extra.conf", "x\n", mode=0o600),
        ),
        # as a real integration does, a command whose effect holds is left out
        commands=()
        if (etc / "built").exists()
        else (Command(("cp", str(etc / "source"), str(etc / "built")), touches=(etc / "built",)),),
        checks=(Command(check),),
        reloads=(Command(("true",), needs_running_mta=True),),
        agents=agents,
    )


def test_apply_shows_backs_up_and_uninstall_restores_bytes(etc: Path, setup_ctx: Ctx) -> None:
    ctx = setup_ctx(etc)
    before = _tree(etc)
    out = Lines()
    questions: list[str] = []
    manifest = apply(
        _plan(etc), ctx, ask=lambda q: questions.append(q) or True, out=out, running=False
    )
    assert manifest is not None and manifest.state == "complete"
    assert questions == ["Apply these changes?"]
    assert f"+++ {etc / 'main.conf'}" in out.text and "+filter = yes" in out.text
    assert f"cp {etc / 'source'} {etc / 'built'}" in out.text
    assert "toy is not running" in out.text  # the reload was skipped with a note
    assert (etc / "main.conf").read_text().endswith("filter = yes\n")
    assert (etc / "main.conf").stat().st_mode & 0o777 == 0o640  # mode kept
    assert (etc / "new.d" / "extra.conf").stat().st_mode & 0o777 == 0o600
    assert (etc / "built").read_text() == "generated\n"

    data = json.loads((state_dir(ctx) / "toy" / "manifest.json").read_text())
    assert data["state"] == "complete" and data["mode"] == "filter"
    by_path = {f["path"]: f for f in data["files"]}
    assert set(by_path) == {
        str(etc / "main.conf"),
        str(etc / "new.d/extra.conf"),
        str(etc / "built"),
    }
    main = by_path[str(etc / "main.conf")]
    assert Path(main["backup"]).read_text() == "a = 1\nb = 2\n"
    assert Path(main["backup"]).stat().st_mode & 0o777 == 0o640
    assert main["sha256_before"] != main["sha256_after"]
    assert by_path[str(etc / "built")]["existed"] is False
    assert (state_dir(ctx) / "toy").stat().st_mode & 0o777 == 0o700

    # a second run changes nothing and asks nothing
    again = Lines()
    assert apply(_plan(etc), ctx, ask=pytest.fail, out=again, running=False) is None
    assert "nothing to do" in again.text
    assert [(m.mta, [f.state for f in files]) for m, files in status(ctx)] == [
        ("toy", ["as set up"] * 3)
    ]

    gone = Lines()
    assert uninstall(ctx, "toy", ask=None, out=gone, running=False) == []
    assert _tree(etc) == before
    assert not (etc / "new.d").exists()  # the folder setup created went too
    assert load_manifest(ctx, "toy") is None
    with pytest.raises(SetupError, match="not set up"):
        uninstall(ctx, "toy", ask=None, out=gone, running=False)


def test_dry_run_and_no_change_nothing(etc: Path, setup_ctx: Ctx) -> None:
    ctx = setup_ctx(etc)
    before = _tree(etc)
    out = Lines()
    assert apply(_plan(etc), ctx, ask=None, out=out, dry_run=True, running=False) is None
    assert "dry run: nothing was changed" in out.text and "+filter = yes" in out.text
    with pytest.raises(SetupCancelled):
        apply(_plan(etc), ctx, ask=lambda q: False, out=out, running=False)
    assert _tree(etc) == before
    assert not state_dir(ctx).exists() or load_manifest(ctx, "toy") is None


def test_failing_checker_restores_every_file(etc: Path, setup_ctx: Ctx) -> None:
    ctx = setup_ctx(etc)
    before = _tree(etc)
    check = ("sh", "-c", "echo 'fatal: bad filter line' >&2; exit 1")
    with pytest.raises(SetupError) as info:
        apply(_plan(etc, check=check), ctx, ask=None, out=Lines(), running=False)
    assert "fatal: bad filter line" in str(info.value)
    assert "every file was restored" in str(info.value)
    assert _tree(etc) == before
    assert not (etc / "new.d").exists()
    assert load_manifest(ctx, "toy") is None


def test_failing_command_restores_every_file(etc: Path, setup_ctx: Ctx) -> None:
    ctx = setup_ctx(etc)
    before = _tree(etc)
    plan = _plan(etc)
    broken = Plan(
        mta=plan.mta,
        mode=plan.mode,
        edits=plan.edits,
        commands=(*plan.commands, Command(("no-such-program-mw",))),
    )
    with pytest.raises(SetupError, match="no-such-program-mw: not found"):
        apply(broken, ctx, ask=None, out=Lines(), running=False)
    assert _tree(etc) == before


def test_edit_after_setup_is_never_silently_discarded(etc: Path, setup_ctx: Ctx) -> None:
    ctx = setup_ctx(etc)
    before = _tree(etc)
    apply(_plan(etc), ctx, ask=None, out=Lines(), running=False)
    main = etc / "main.conf"
    main.write_text(main.read_text() + "local = admin\n")
    assert dict((f.path, f.state) for _, fs in status(ctx) for f in fs)[str(main)] == (
        "edited since setup"
    )

    out = Lines()
    kept = uninstall(ctx, "toy", ask=None, out=out, running=False)  # --yes
    assert kept == [str(main)]
    assert "+local = admin" in out.text and "never discards" in out.text
    assert main.read_text().endswith("local = admin\n")
    assert not (etc / "built").exists()  # the untouched files were restored

    refused = Lines()
    with pytest.raises(SetupCancelled):
        uninstall(ctx, "toy", ask=lambda q: False, out=refused, running=False)
    assert f"{main}: edited since setup" in refused.text
    # yes to the undo, no to throwing away the edit
    kept_again = uninstall(
        ctx, "toy", ask=lambda q: q == "Undo the setup?", out=refused, running=False
    )
    assert kept_again == [str(main)]
    assert main.read_text().endswith("local = admin\n")

    looked = Lines()
    assert uninstall(ctx, "toy", ask=pytest.fail, out=looked, running=False, dry_run=True) == []
    assert "dry run: nothing was changed" in looked.text
    assert main.read_text().endswith("local = admin\n")

    assert uninstall(ctx, "toy", ask=lambda q: True, out=Lines(), running=False) == []
    assert _tree(etc) == before


def test_other_mode_must_be_uninstalled_first(etc: Path, setup_ctx: Ctx) -> None:
    ctx = setup_ctx(etc)
    apply(_plan(etc), ctx, ask=None, out=Lines(), running=False)
    other = Plan(mta="toy", mode="proxy", edits=(FileEdit(etc / "main.conf", "proxy\n"),))
    with pytest.raises(SetupError, match="already set up in mode filter"):
        apply(other, ctx, ask=None, out=Lines(), running=False)


def test_mailwarden_side_drop_in(etc: Path, setup_ctx: Ctx) -> None:
    ctx = setup_ctx(etc)
    ctx.mailwarden_config.write_text('[serve]\nagents = ["pop3-proxy"]\n')
    plan = Plan(
        mta="toy",
        mode="milter",
        agents=("milter",),
        settings={"milter": {"socket": "inet:8899@127.0.0.1"}},
    )
    out = Lines()
    apply(plan, ctx, ask=None, out=out, running=False)
    drop_in = ctx.mailwarden_config.parent / "conf.d" / "50-setup-toy.toml"
    data = tomllib.loads(drop_in.read_text())
    assert data["serve"]["agents"] == ["pop3-proxy", "milter"]
    assert data["milter"]["socket"] == "inet:8899@127.0.0.1"
    assert "systemd is not running" in out.text
    assert apply(plan, ctx, ask=None, out=Lines(), running=False) is None
    uninstall(ctx, "toy", ask=None, out=Lines(), running=False)
    assert not drop_in.exists() and not drop_in.parent.exists()


def _agents(ctx: SetupContext) -> list[str]:
    from mailwarden.config import load_config

    return list(load_config(ctx.mailwarden_config)["serve"]["agents"])


@pytest.mark.parametrize("first_out", ["toy", "box"])
def test_two_mtas_each_keep_their_own_drop_in(etc: Path, setup_ctx: Ctx, first_out: str) -> None:
    """Two MTAs on one host: undoing either (in either order) asks nothing about the
    other's file, keeps the other's agents running, and the last leaves every byte."""
    ctx = setup_ctx(etc)
    ctx.mailwarden_config.write_text('[serve]\nagents = ["pop3-proxy"]\n')
    conf_d = ctx.mailwarden_config.parent
    before = _tree(conf_d)
    toy = Plan(mta="toy", mode="milter", agents=("milter",))
    box = Plan(mta="box", mode="mda", agents=("mda-agent",), settings={"mda": {"agent": "require"}})
    apply(toy, ctx, ask=None, out=Lines(), running=False)
    apply(box, ctx, ask=None, out=Lines(), running=False)
    # the later setup's file comes after the earlier one and lists every agent
    assert sorted(p.name for p in (conf_d / "conf.d").iterdir()) == [
        "50-setup-toy.toml",
        "51-setup-box.toml",
    ]
    assert _agents(ctx) == ["pop3-proxy", "milter", "mda-agent"]
    assert apply(toy, ctx, ask=None, out=Lines(), running=False) is None  # nothing to do

    def never(question: str) -> bool:
        raise AssertionError(f"asked: {question}")

    out = Lines()
    # an ask that fails on any question but the first: no file of the other MTA is shown
    asked: list[str] = []
    assert (
        uninstall(ctx, first_out, ask=lambda q: asked.append(q) or True, out=out, running=False)
        == []
    )
    assert asked == ["Undo the setup?"], out.text
    assert "edited since setup" not in out.text
    if first_out == "toy":
        # the later list stays in force: the box's agent runs on; the note names the file
        assert "mda-agent" in _agents(ctx)
        assert "51-setup-box.toml (written by another MTA's setup) still names milter" in (out.text)
        other = "box"
    else:
        assert _agents(ctx) == ["pop3-proxy", "milter"]
        other = "toy"
    assert (
        uninstall(
            ctx, other, ask=lambda q: q == "Undo the setup?" or never(q), out=Lines(), running=False
        )
        == []
    )
    assert _tree(conf_d) == before
    # the folder goes with the setup that created it, when nothing is left in it
    assert (conf_d / "conf.d").exists() is (first_out == "toy")


def test_unreadable_file_changes_nothing(etc: Path, setup_ctx: Ctx) -> None:
    ctx = setup_ctx(etc)
    plan = Plan(
        mta="toy",
        mode="filter",
        edits=(FileEdit(etc / "x.conf", "x\n"), FileEdit(etc, "a folder\n")),
    )
    with pytest.raises(SetupError, match=str(etc)):
        apply(plan, ctx, ask=None, out=Lines(), running=False)
    assert not (etc / "x.conf").exists()
    assert load_manifest(ctx, "toy") is None


_INTERRUPTED = """
import sys
from pathlib import Path
from mailwarden.setup import Command, FileEdit, Plan, SetupContext, apply
etc, config, state = map(Path, sys.argv[1:4])
ctx = SetupContext(etc, "/usr/bin/mailwarden", config, state_dir=state, systemd=False)
plan = Plan(mta="toy", mode="filter",
            edits=(FileEdit(etc / "main.conf", "half\\n"),),
            commands=(Command(("sleep", "60")),))
apply(plan, ctx, ask=None, out=lambda line: None, running=False)
"""


def test_interrupted_run_is_rolled_back_on_the_next(etc: Path, setup_ctx: Ctx) -> None:
    ctx = setup_ctx(etc)
    before = _tree(etc)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _INTERRUPTED,
            str(etc),
            str(ctx.mailwarden_config),
            str(state_dir(ctx)),
        ],
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while (etc / "main.conf").read_text() != "half\n":
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    manifest = load_manifest(ctx, "toy")
    assert manifest is not None and manifest.state == "applying"

    out = Lines()
    assert recover(ctx, "toy", out=out)
    assert "did not finish" in out.text
    assert _tree(etc) == before
    assert load_manifest(ctx, "toy") is None
    kept = list((state_dir(ctx) / "toy").glob("interrupted-*/**/main.conf"))
    assert [p.read_text() for p in kept] == ["half\n"]


def test_registry_lists_every_mta() -> None:
    assert list(INTEGRATIONS) == ["postfix", "sendmail", "exim", "qmail", "zmailer"]
    assert "sendmail" in INTEGRATIONS and "toy" not in INTEGRATIONS
    with pytest.raises(KeyError):
        INTEGRATIONS["toy"]
    found = available()
    assert set(found) == set(INTEGRATIONS)
    for name, item in found.items():
        if isinstance(item, str):
            assert "not available" in item
        else:
            assert item.mta == name


def test_a_damaged_manifest_is_reported_not_guessed(etc: Path, setup_ctx: Ctx) -> None:
    ctx = setup_ctx(etc)
    apply(_plan(etc), ctx, ask=None, out=Lines(), running=False)
    path = state_dir(ctx) / "toy" / "manifest.json"
    path.write_text('{"mta": "toy", "files": [')
    with pytest.raises(SetupError, match=r"manifest is damaged.*backups beside it are intact"):
        uninstall(ctx, "toy", ask=None, out=Lines(), running=False)
    assert (etc / "main.conf").read_text().endswith("filter = yes\n")  # nothing was touched


def test_a_setting_undone_by_hand_is_applied_again_and_uninstall_still_restores(
    etc: Path, setup_ctx: Ctx
) -> None:
    ctx = setup_ctx(etc)
    before = _tree(etc)
    apply(_plan(etc), ctx, ask=None, out=Lines(), running=False)
    (etc / "main.conf").write_text("a = 1\nb = 3\n")  # an administrator's change
    out = Lines()
    assert apply(_plan(etc), ctx, ask=None, out=out, running=False) is not None
    assert "-b = 3" in out.text and "+filter = yes" in out.text
    manifest = load_manifest(ctx, "toy")
    assert manifest is not None and manifest.state == "complete"
    main = manifest.record(etc / "main.conf")
    assert main is not None and Path(main.backup or "").read_text() == "a = 1\nb = 2\n"
    uninstall(ctx, "toy", ask=None, out=Lines(), running=False)
    assert _tree(etc) == before  # the first run's backups are the originals


def test_a_second_run_at_the_same_time_stops_at_once(etc: Path, setup_ctx: Ctx) -> None:
    ctx = setup_ctx(etc)
    before = _tree(etc)
    with locked(ctx, "toy"):  # a run in progress holds it
        with pytest.raises(SetupError, match="another mailwarden setup is running"):
            apply(_plan(etc), ctx, ask=None, out=Lines(), running=False)
        with pytest.raises(SetupError, match="another mailwarden setup is running"):
            uninstall(ctx, "toy", ask=None, out=Lines(), running=False)
    assert _tree(etc) == before
    assert apply(_plan(etc), ctx, ask=None, out=Lines(), running=False) is not None


def test_a_0666_mda_socket_in_the_units_runtime_folder_opens_it_under_systemd(
    setup_ctx: Ctx,
) -> None:
    from mailwarden.setup import mailwarden_side

    plan = Plan(
        mta="toy",
        mode="mda",
        agents=("mda-agent",),
        settings={"mda": {"agent": "require", "agent_socket_mode": "0666"}},
    )
    # the default socket, /run/mailwarden/mda.sock: the unit makes that folder 0750
    edits = mailwarden_side.mailwarden_edits(plan, setup_ctx(None, systemd=True))
    [unit] = [e for e in edits if mailwarden_side.is_unit_file(e.path)]
    assert unit.path == Path("/etc/systemd/system/mailwarden.service.d/50-setup-toy.conf")
    assert (unit.text or "").endswith("[Service]\nRuntimeDirectoryMode=0751\n")
    # no systemd, or a socket elsewhere: the unit is not touched
    assert not any(
        mailwarden_side.is_unit_file(e.path)
        for e in mailwarden_side.mailwarden_edits(plan, setup_ctx(None, systemd=False))
    )
    ctx = setup_ctx(None, systemd=True)
    ctx.mailwarden_config.write_text('[mda]\nagent_socket = "/srv/mw/mda.sock"\n')
    assert not any(
        mailwarden_side.is_unit_file(e.path) for e in mailwarden_side.mailwarden_edits(plan, ctx)
    )
