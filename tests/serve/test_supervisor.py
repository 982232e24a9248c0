"""``mailwarden serve`` as a real process: start, restart, give up, reload, stop.

Every test runs the real daemon (bundled signatures, one worker) under a
real supervisor and acts on it with signals, as an operator or a crash would.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path

from serve.harness import ServeRun

Start = Callable[..., ServeRun]


def _daemon_up(run: ServeRun, times: int = 1) -> None:
    run.wait_for(r"^mailwarden-serve: INFO daemon: ready$", count=times)
    assert run.ping()


def test_starts_the_daemon_and_stops_it_on_sigterm_leaving_nothing(start_serve: Start) -> None:
    run = start_serve()
    _daemon_up(run)
    below = run.descendants()
    # the daemon, its loader and its worker
    assert run.child_pid("daemon") in below
    assert len(below) >= 3

    assert run.stop() == 0
    assert run.leftovers() == []
    assert not Path(run.socket).exists()
    assert "mailwarden-serve: INFO stopped" in run.log()


def test_sigint_stops_like_sigterm(start_serve: Start) -> None:
    run = start_serve()
    _daemon_up(run)
    run.descendants()
    run.signal(signal.SIGINT)
    assert run.wait() == 0
    assert run.leftovers() == []


def test_a_daemon_killed_with_sigkill_comes_back_and_its_workers_do_not_linger(
    start_serve: Start,
) -> None:
    run = start_serve()
    _daemon_up(run)
    first = run.child_pid("daemon")
    old_group = run.descendants()

    os.kill(first, signal.SIGKILL)
    _daemon_up(run, times=2)

    assert "daemon: killed by SIGKILL" in run.log()
    second = run.child_pid("daemon")
    assert second != first
    # the old daemon's loader and worker went with it
    assert run.wait_gone(old_group)
    assert run.stop() == 0
    assert run.leftovers() == []


def test_repeated_crashes_are_each_restarted(start_serve: Start) -> None:
    run = start_serve({"serve": {"start_failures": 2}})
    for round_ in range(1, 4):
        _daemon_up(run, times=round_)
        os.kill(run.child_pid("daemon"), signal.SIGKILL)
    # each crash came after the daemon was ready: none counts towards giving up
    _daemon_up(run, times=4)
    assert "not restarting" not in run.log()
    assert run.stop() == 0


def test_children_run_in_their_own_process_group(start_serve: Start) -> None:
    run = start_serve()
    _daemon_up(run)
    daemon = run.child_pid("daemon")
    assert os.getpgid(daemon) == daemon
    assert os.getpgid(run.proc.pid) != daemon
    run.stop()


def test_a_daemon_that_fails_at_once_is_given_up_on(start_serve: Start, serve_folder: Path) -> None:
    sigs = serve_folder / "sigs"
    sigs.mkdir()
    (sigs / "broken.ndb").write_text("not a signature\n")
    run = start_serve({"engine": {"databases": [str(sigs)]}})

    assert run.wait() == 1
    log = run.log()
    assert len(run.child_pids("daemon")) == 3
    assert "broken.ndb:1" in log  # the daemon's own reason reaches the log
    assert "daemon: failed 3 times in a row before it was ready; not restarting it" in log
    assert "every child has been given up on" in log


def test_a_daemon_failing_at_start_is_retried_until_the_cause_is_fixed(
    start_serve: Start, serve_folder: Path
) -> None:
    sigs = serve_folder / "sigs"
    sigs.mkdir()
    broken = sigs / "broken.ndb"
    broken.write_text("not a signature\n")
    run = start_serve(
        {
            "engine": {"databases": [str(sigs)]},
            "serve": {"start_failures": 1000, "restart_delay": 0.2, "restart_delay_max": 0.2},
        }
    )
    run.wait_for(r"daemon: exit status 2", count=2)
    broken.unlink()
    _daemon_up(run)
    assert run.stop() == 0
    assert run.leftovers() == []


def test_sighup_makes_the_daemon_reload(start_serve: Start) -> None:
    run = start_serve()
    _daemon_up(run)
    daemon = run.child_pid("daemon")
    run.signal(signal.SIGHUP)
    run.wait_for(r"mailwarden-daemon: INFO reloaded: ok: generation 2")
    # the same daemon reloaded; it was not restarted
    assert run.child_pid("daemon") == daemon
    assert run.ping()
    assert run.stop() == 0


def test_a_daemon_that_exits_on_its_own_is_started_again(start_serve: Start) -> None:
    run = start_serve()
    _daemon_up(run)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(run.socket)
        sock.sendall(b"zSHUTDOWN\0")
        sock.recv(100)
    _daemon_up(run, times=2)
    assert "daemon: exit status 0" in run.log()
    assert run.stop() == 0


def test_serve_killed_with_sigkill_takes_its_children_with_it(start_serve: Start) -> None:
    run = start_serve()
    _daemon_up(run)
    daemon = run.child_pid("daemon")
    start = run.descendants()[daemon]
    run.proc.kill()
    run.proc.wait()
    # the kernel sends the daemon SIGTERM when its parent dies; it stops its workers
    assert run.wait_gone({daemon: start})
    assert run.wait_gone(run.seen)


def test_sigterm_while_the_daemon_waits_to_restart(start_serve: Start) -> None:
    run = start_serve({"serve": {"restart_delay": 5.0, "restart_delay_max": 5.0}})
    _daemon_up(run)
    os.kill(run.child_pid("daemon"), signal.SIGKILL)
    run.wait_for(r"daemon: restarting in 5.0s")
    run.descendants()
    run.signal(signal.SIGTERM)
    assert run.wait() == 0
    assert run.leftovers() == []
    assert len(run.child_pids("daemon")) == 1


def test_serve_killed_with_sigkill_leaves_no_agent_and_a_new_serve_starts(
    start_serve: Start,
) -> None:
    from serve.harness import free_port

    port = free_port()
    overrides = {
        "serve": {"agents": ["smtp-filter"]},
        "smtp_filter": {"listen": f"127.0.0.1:{port}", "downstream": "127.0.0.1:1"},
    }
    run = start_serve(overrides)
    run.wait_for(r"^mailwarden-serve: INFO smtp-filter: ready$")
    below = run.descendants()
    assert len(below) >= 4  # the daemon, its loader and worker, the filter
    run.proc.kill()
    run.proc.wait()
    # every child asked the kernel for SIGTERM when serve dies; the daemon's
    # loader asked the same of the daemon
    assert run.wait_gone(below), {pid: os.readlink(f"/proc/{pid}/exe") for pid in run.leftovers()}
    # nothing is left to stop a new serve: it starts the whole set again
    again = start_serve(overrides)
    again.wait_for(r"^mailwarden-serve: INFO smtp-filter: ready$")
    assert again.stop() == 0


def test_a_second_serve_beside_a_live_daemon_refuses_with_a_clear_message(
    start_serve: Start,
) -> None:
    import subprocess
    import sys

    run = start_serve()
    _daemon_up(run)
    daemon = run.child_pid("daemon")
    second = subprocess.run(
        [sys.executable, "-m", "mailwarden", "serve", "-c", str(run.config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 1
    assert (
        f"a mailwarden daemon is running as pid {daemon} (pid file {run.folder}/d.pid)"
        in second.stderr
    ), second.stderr
    assert "stop it first" in second.stderr
    # nothing was started beside it, and the first keeps serving
    assert "started, pid" not in second.stderr
    assert run.ping() and run.child_pid("daemon") == daemon
    assert run.stop() == 0
