"""``serve.children`` and ``mailwarden serve --check``: what would be started, and
configuration errors that stop serve before anything starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mailwarden.config import defaults, load_config
from mailwarden.config.schema import SERVE_AGENTS
from mailwarden.errors import ConfigError
from mailwarden.serve import AGENTS, DAEMON, ServeSettings, plan
from mailwarden.serve.listening import Endpoint, parse_endpoint
from serve.harness import base_toml


def _serve(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailwarden", "serve", "-c", str(config), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_every_agent_the_configuration_accepts_has_an_entry() -> None:
    assert set(AGENTS) == set(SERVE_AGENTS)


def test_the_daemon_comes_first_with_the_same_interpreter_and_config() -> None:
    config = defaults()
    settings = ServeSettings.from_config(config, config_file="/etc/mw.toml")
    specs = plan(config, settings)
    assert specs[0].name == DAEMON
    assert specs[0].argv == (
        sys.executable,
        "-m",
        "mailwarden",
        "daemon",
        "-c",
        "/etc/mw.toml",
        "--foreground",
    )
    assert specs[0].ping == config["daemon"]["socket"]


def test_without_a_file_the_children_get_no_config_flag() -> None:
    config = defaults()
    specs = plan(config, ServeSettings.from_config(config, config_file=None))
    assert "-c" not in specs[0].argv


def test_a_daemon_reachable_only_by_tcp_is_pinged_there() -> None:
    config = defaults()
    config["daemon"]["socket"] = ""
    config["daemon"]["tcp"] = "127.0.0.1:3310"
    (spec,) = plan(config, ServeSettings.from_config(config, config_file=None))
    assert (spec.ping, spec.ping_is_tcp) == ("127.0.0.1:3310", True)


def test_a_daemon_nobody_can_reach_is_a_located_config_error(tmp_path: Path) -> None:
    file = tmp_path / "mw.toml"
    file.write_text('[engine]\nbundled = true\n\n[daemon]\nsocket = ""\n')
    config = load_config(file)
    with pytest.raises(ConfigError) as caught:
        plan(config, ServeSettings.from_config(config, config_file=str(file)))
    assert (caught.value.file, caught.value.line, caught.value.key) == (
        str(file),
        5,
        "daemon.socket",
    )


def test_check_prints_what_would_run(tmp_path: Path) -> None:
    config = tmp_path / "mw.toml"
    config.write_text(base_toml(tmp_path))
    result = _serve(config, "--check")
    assert result.returncode == 0, result.stderr
    assert f"configuration: {config}" in result.stdout
    assert "as the current user" in result.stdout or "after dropping root" in result.stdout
    assert (
        f"daemon: {sys.executable} -m mailwarden daemon -c {config} --foreground" in result.stdout
    )
    # nothing was started
    assert not (tmp_path / "d.sock").exists()


@pytest.mark.parametrize(
    ("serve_lines", "line", "key"),
    [
        ('agents = ["no-such-agent"]', 3, "serve.agents"),
        ("restart_delay = -1", 3, "serve.restart_delay"),
        ("start_failures = 0", 3, "serve.start_failures"),
        ("\nbogus = 1", 4, "serve.bogus"),
    ],
)
def test_config_errors_stop_serve_with_file_line_and_key(
    tmp_path: Path, serve_lines: str, line: int, key: str
) -> None:
    config = tmp_path / "mw.toml"
    config.write_text(f"# serve test\n[serve]\n{serve_lines}\n")
    for args in ((), ("--check",)):
        result = _serve(config, *args)
        assert result.returncode == 2
        assert f"{config}:{line}: key '{key}'" in result.stderr
        assert not result.stdout


def test_an_unknown_user_is_a_config_error_when_root(tmp_path: Path) -> None:
    import os

    if os.geteuid() != 0:
        pytest.skip("the user is only looked up by root")
    config = tmp_path / "mw.toml"
    config.write_text('[serve]\nuser = "no-such-user-here"\n')
    result = _serve(config, "--check")
    assert result.returncode == 2
    assert f"{config}:2: key 'serve.user': no such user" in result.stderr


def test_an_agent_gets_the_daemons_socket_and_is_watched_on_its_port() -> None:
    config = defaults()
    config["serve"]["agents"] = ["smtp-filter"]
    config["daemon"]["socket"] = "/run/x/d.sock"
    config["smtp_filter"]["listen"] = "127.0.0.1:10099"
    daemon, agent = plan(config, ServeSettings.from_config(config, config_file="/etc/mw.toml"))
    assert daemon.name == DAEMON
    assert agent.name == "smtp-filter"
    assert agent.argv[3:] == (
        "smtp-filter",
        "-c",
        "/etc/mw.toml",
        "--daemon-socket",
        "/run/x/d.sock",
    )
    assert agent.listen == Endpoint(port=10099)


@pytest.mark.parametrize(
    ("text", "endpoint"),
    [
        ("127.0.0.1:10025", Endpoint(port=10025)),
        ("[::1]:10025", Endpoint(port=10025)),
        ("inet:10030@127.0.0.1", Endpoint(port=10030)),
        ("inet6:10030@[::1]", Endpoint(port=10030)),
        ("unix:/run/mailwarden/milter.sock", Endpoint(path="/run/mailwarden/milter.sock")),
        ("local:/run/m.sock", Endpoint(path="/run/m.sock")),
        ("/run/m.sock", Endpoint(path="/run/m.sock")),
    ],
)
def test_listen_addresses_in_every_notation(text: str, endpoint: Endpoint) -> None:
    assert parse_endpoint(text) == endpoint


def test_a_listen_address_without_a_port_is_rejected() -> None:
    with pytest.raises(ValueError, match="not a listening address"):
        parse_endpoint("localhost")
