"""Recording in a process: nothing until armed, files 0600, a broken folder costs no message.

Each case runs in a fresh interpreter: recording changes process-wide state of
prometheus-client, as it does in an agent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from mailwarden.message import Envelope, Point, Direction
from mailwarden.metrics import record
record.arm(enabled=sys.argv[2] == "on", directory=sys.argv[1])
env = Envelope(point=Point.MTA, agent="milter", direction=Direction.OUTBOUND)
for _ in range(3):
    record.scanned(env, status="clean", action="accept", seconds=0.01)
print("prometheus_client" in sys.modules)
"""


def _run(directory: Path, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(directory), mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_armed_process_writes_private_counter_files(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    assert _run(folder, "on").stdout.strip() == "True"
    assert folder.stat().st_mode & 0o777 == 0o700
    files = sorted(p.name.split("_")[0] for p in folder.iterdir())
    assert files == ["counter", "histogram"]
    assert all(p.stat().st_mode & 0o077 == 0 for p in folder.iterdir())


def test_disabled_process_imports_and_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    assert _run(folder, "off").stdout.strip() == "False"
    assert not folder.exists()


def test_a_folder_that_cannot_be_made_only_warns(tmp_path: Path) -> None:
    folder = tmp_path / "no" / "such" / "metrics"  # parents are never created
    result = _run(folder, "on")
    assert "metrics are not recorded by this process" in result.stderr
    assert not (tmp_path / "no").exists()
