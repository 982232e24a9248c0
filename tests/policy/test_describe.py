"""`mailwarden config check` prints the effective policy, and stays loadable TOML."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailwarden.cli import main
from mailwarden.config import load_config

CONFIG = """
[policy]
outbound_infected = "discard"
after_queue_reject = "discard"

[[policy.override]]
recipients = ["abuse@example.org"]
infected = "accept"
"""


def test_config_check_prints_the_effective_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.toml"
    path.write_text(CONFIG, encoding="utf-8")
    assert main(["config", "check", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    rows = {
        tuple(line.split()[1:3]): line
        for line in out.splitlines()
        if line.startswith("# inbound") or line.startswith("# outbound")
    }
    assert "reject (554 5.7.1 Infected: NAME)" in rows[("inbound", "infected")]
    assert rows[("inbound", "infected")].rstrip().endswith("discard (250 2.7.0 Ok: discarded)")
    assert "discard" in rows[("outbound", "infected")].split("(")[0]
    assert "defer (451 4.7.1 Scanning temporarily unavailable)" in rows[("inbound", "error")]
    assert "override 1 (recipients abuse@example.org): infected accept" in out
    # the whole output, policy included, is a configuration equal to the one checked
    again = tmp_path / "again.toml"
    again.write_text(out, encoding="utf-8")
    assert load_config(again).values == load_config(path).values


def test_config_check_rejects_a_bad_override(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.toml"
    path.write_text(
        '[[policy.override]]\nsenders = ["x@y.example"]\nerror = "explode"\n', encoding="utf-8"
    )
    assert main(["config", "check", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3" in err and "policy.override[1].error" in err
