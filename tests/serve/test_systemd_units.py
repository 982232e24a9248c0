"""The unit files in systemd/: systemd accepts them, each runs a real command, the
single units and the supervisor's exclude each other, every unit is hardened, and
the update timer runs the one-shot update beside either."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mailwarden.config import defaults
from mailwarden.config.schema import SERVE_AGENTS
from support.tools import require

UNITS = Path(__file__).resolve().parents[2] / "systemd"
SUPERVISOR = "mailwarden.service"
SINGLE = ["mailwarden-daemon.service", *(f"mailwarden-{a}.service" for a in SERVE_AGENTS)]
#: `mailwarden update` from [update] source, started by its timer
UPDATE = "mailwarden-update.service"
TIMER = "mailwarden-update.timer"
SERVICES = [SUPERVISOR, *SINGLE, UPDATE]
HARDENING = {
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "ProtectSystem": "strict",
    "ProtectHome": "read-only",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "RestrictNamespaces": "yes",
    "RestrictSUIDSGID": "yes",
    "SystemCallArchitectures": "native",
    "SystemCallFilter": "@system-service",
}


def _settings(unit: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (UNITS / unit).read_text().splitlines():
        m = re.match(r"^(\w+)=(.*)$", line)
        if m:
            values[m.group(1)] = m.group(2)
    return values


def test_there_is_a_unit_for_the_supervisor_the_daemon_every_agent_and_updates() -> None:
    assert sorted(p.name for p in UNITS.glob("*.service")) == sorted(SERVICES)
    assert sorted(p.name for p in UNITS.glob("*.timer")) == [TIMER]
    assert sorted(p.name for p in UNITS.iterdir()) == sorted([*SERVICES, TIMER])


@pytest.mark.parametrize("unit", [*SERVICES, TIMER])
def test_systemd_accepts_the_unit(unit: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    require(analyze is not None, "systemd-analyze is not installed (apt-get install systemd)")
    # verify wants the programs to exist: point them at this checkout's command;
    # a timer is checked with the service it starts beside it
    mailwarden = Path(sys.executable).with_name("mailwarden")
    for name in {unit, UPDATE} if unit == TIMER else {unit}:
        text = (UNITS / name).read_text().replace("/usr/bin/mailwarden", str(mailwarden))
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [str(analyze), "verify", str(tmp_path / unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("unit", SERVICES)
def test_the_command_exists_and_runs_unprivileged_and_hardened(unit: str) -> None:
    settings = _settings(unit)
    argv = settings["ExecStart"].split()
    assert argv[0] == "/usr/bin/mailwarden"
    result = subprocess.run(
        [sys.executable, "-m", "mailwarden", argv[1], "--help"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert settings["User"] == "mailwarden"
    for key, value in HARDENING.items():
        assert settings.get(key) == value, f"{unit}: {key}"


def test_the_supervisor_and_the_single_units_exclude_each_other() -> None:
    assert set(_settings(SUPERVISOR)["Conflicts"].split()) == set(SINGLE)
    for unit in SINGLE:
        assert SUPERVISOR in _settings(unit)["Conflicts"].split()


def test_the_supervisor_gets_time_to_stop_agents_then_the_daemon() -> None:
    stop_timeout = defaults()["serve"]["stop_timeout"]
    assert int(_settings(SUPERVISOR)["TimeoutStopSec"]) > 2 * stop_timeout
    assert _settings(SUPERVISOR)["KillMode"] == "mixed"


def test_the_update_timer_runs_the_one_shot_update_beside_either_setup() -> None:
    timer = _settings(TIMER)
    assert timer["WantedBy"] == "timers.target"
    assert timer.get("Unit", UPDATE) == UPDATE
    assert timer["OnCalendar"] and timer["Persistent"] == "yes"
    update = _settings(UPDATE)
    assert update["Type"] == "oneshot"
    assert update["ExecStart"].split()[1:] == ["update"]
    # a fetch does not stop the supervisor or the daemon, and is started by the timer only
    assert "Conflicts" not in update
    assert "WantedBy" not in update


def test_the_update_agents_run_update_in_their_mode() -> None:
    assert _settings("mailwarden-update-watch.service")["ExecStart"].split()[1:] == [
        "update",
        "--watch",
    ]
    assert _settings("mailwarden-update-mirror.service")["ExecStart"].split()[1:] == [
        "update",
        "--serve-mirror",
    ]
