"""The unit files in systemd/: systemd accepts them, each runs a real command, the
single units and the supervisor's exclude each other, and every unit is hardened."""

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


def test_there_is_a_unit_for_the_supervisor_the_daemon_and_every_agent() -> None:
    assert sorted(p.name for p in UNITS.glob("*.service")) == sorted([SUPERVISOR, *SINGLE])


@pytest.mark.parametrize("unit", [SUPERVISOR, *SINGLE])
def test_systemd_accepts_the_unit(unit: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    require(analyze is not None, "systemd-analyze is not installed (apt-get install systemd)")
    # verify wants the programs to exist: point them at this checkout's command
    mailwarden = Path(sys.executable).with_name("mailwarden")
    text = (UNITS / unit).read_text().replace("/usr/bin/mailwarden", str(mailwarden))
    (tmp_path / unit).write_text(text)
    result = subprocess.run(
        [str(analyze), "verify", str(tmp_path / unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("unit", [SUPERVISOR, *SINGLE])
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
