"""``mailwarden setup --mta zmailer`` on a tree laid out like ZMailer's, against a real daemon.

Setup adds ``PARAM contentfilter`` to smtpserver.conf and writes the wrapper
in $MAILBIN; the wrapper is then run as smtpserver runs its content filter
(``support/zmailer_standin.py``): clean mail queued with our headers, EICAR
answered 554 and dropped.  A second run has nothing to do; ``--uninstall``
restores every byte.  A different filter already configured is refused, and
a tree without ZMailer is "not installed".
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from intercept.harness import EICAR, Stack
from intercept.mail import make_message
from setup.mta_trees import launcher, run_setup, tree_snapshot, zmailer_tree
from support.zmailer_standin import Postoffice


def _setup(
    mta_dir: Path, stack: Stack, program: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return run_setup("zmailer", mta_dir, stack.config, program, *args)


def test_content_filter_through_smtpserver_and_back(tmp_path: Path, stack: Stack) -> None:
    mailbin = tmp_path / "usr-lib-zmailer"
    po = Postoffice.create(tmp_path / "postoffice")
    config = zmailer_tree(tmp_path / "etc-zmailer", mailbin, po.root)
    program = launcher(tmp_path / "bin" / "mailwarden")
    original = tree_snapshot(tmp_path / "etc-zmailer")
    original_bin = tree_snapshot(mailbin)

    done = _setup(config, stack, program, "--mode", "content-filter", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    wrapper = mailbin / "mailwarden-zmailer"
    conf = (config / "smtpserver.conf").read_text()
    assert f"PARAM debugcmd\nPARAM contentfilter {wrapper}\n\n# HELO" in conf
    assert f"+PARAM contentfilter {wrapper}" in done.stdout
    assert "zmailer is not running; skipped" in done.stdout

    with po.start([str(wrapper)]) as server:
        clean, clean_id = make_message(sender="a@remote.example", to="b@test.example")
        outcome = server.submit(clean, "a@remote.example", ["b@test.example"])
        assert outcome.result == 0 and outcome.reply.startswith("250"), outcome
        infected, _ = make_message(sender="a@remote.example", to="b@test.example", attachment=EICAR)
        outcome = server.submit(infected, "a@remote.example", ["b@test.example"])
        assert outcome.result < 0 and outcome.reply.startswith("554 5.7.1"), outcome
    queued = po.queued()
    assert len(queued) == 1 and clean_id.encode() in queued[0]
    assert b"X-Virus-Status: Clean" in queued[0]

    again = _setup(config, stack, program, "--mode", "content-filter", "--yes")
    assert "nothing to do" in again.stdout, again.stdout + again.stderr

    gone = _setup(config, stack, program, "--uninstall", "--yes")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert tree_snapshot(tmp_path / "etc-zmailer") == original
    assert tree_snapshot(mailbin) == original_bin


def test_another_content_filter_is_refused(tmp_path: Path, stack: Stack) -> None:
    config = zmailer_tree(tmp_path / "etc", tmp_path / "bin", tmp_path / "po")
    conf = config / "smtpserver.conf"
    conf.write_text("PARAM contentfilter /usr/local/bin/other-filter\n" + conf.read_text())
    original = tree_snapshot(tmp_path)
    done = _setup(config, stack, Path("/usr/bin/mailwarden"), "--mode", "content-filter", "--yes")
    assert done.returncode == 2
    assert "already runs the content filter /usr/local/bin/other-filter" in done.stderr
    assert tree_snapshot(tmp_path) == original


def test_not_installed(tmp_path: Path, stack: Stack) -> None:
    (tmp_path / "etc").mkdir()
    done = _setup(
        tmp_path / "etc", stack, Path("/usr/bin/mailwarden"), "--mode", "content-filter", "--yes"
    )
    assert done.returncode == 2
    assert "zmailer: not installed on this host; nothing was changed" in done.stderr
    assert list((tmp_path / "etc").iterdir()) == []
