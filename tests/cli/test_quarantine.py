"""`mailwarden quarantine`: list filters, show, release, delete, purge, ids and exit codes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mailwarden.cli import main
from mailwarden.config import load_config
from mailwarden.message import Envelope, Point
from mailwarden.store import QuarantineId, ScanEvent, open_store
from mailwarden.verdict import Finding, Status, Verdict
from support.postgres import Cluster
from support.smtp_sink import smtp_sink

RAW = b"From: a@x.example\r\nSubject: \x1b[2Jinvoice\r\n\r\nbody\r\n"
EICAR = Verdict(Status.INFECTED, (Finding("Eicar-Test-Signature", "1/e.com", "clamav"),))
TROJAN = Verdict(Status.INFECTED, (Finding("Win.Trojan.Agent", "2/a.exe", "clamav"),))


@pytest.fixture(params=["sqlite", "postgresql"])
def config_file(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """The same configuration on each store backend."""
    if request.param == "sqlite":
        store = f'[store]\ndatabase = "{tmp_path}/db/s.sqlite3"\nspool_dir = "{tmp_path}/spool"\n'
    else:
        cluster: Cluster = request.getfixturevalue("postgres")
        store = cluster.config(cluster.create_database())
    path = tmp_path / "mailwarden.toml"
    path.write_text(
        f'{store}retention_days = 1\n\n[release]\nhost = "127.0.0.1"\nport = 9\n'
        f'timeout = 5.0\nsecret_file = "{tmp_path}/release.key"\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def ids(config_file: Path) -> tuple[QuarantineId, QuarantineId]:
    store = open_store(load_config(config_file))
    first = store.put(
        RAW, Envelope("eve@evil.example", ("bob@local.example",)), EICAR, "policy.infected"
    )
    second = store.put(
        RAW, Envelope("", ("ann@other.example",), point=Point.MDA), TROJAN, "policy.infected"
    )
    store.close()
    return first, second


def cli(config_file: Path, *args: str) -> int:
    return main(["quarantine", args[0], "-c", str(config_file), *args[1:]])


def test_list_text_and_json_with_filters(
    config_file: Path, ids: tuple[QuarantineId, QuarantineId], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(config_file, "list") == 0
    out = capsys.readouterr().out
    assert ids[0] in out and ids[1] in out and "\x1b" not in out
    assert cli(config_file, "list", "--json", "--finding", "eicar") == 0
    assert [e["id"] for e in json.loads(capsys.readouterr().out)] == [ids[0]]
    assert cli(config_file, "list", "--json", "--recipient", "other.example", "--point", "S2") == 0
    assert [e["id"] for e in json.loads(capsys.readouterr().out)] == [ids[1]]
    assert cli(config_file, "list", "--json", "--since", "1d", "--sender", "eve@evil.example") == 0
    assert [e["id"] for e in json.loads(capsys.readouterr().out)] == [ids[0]]
    assert cli(config_file, "list", "--json", "--until", "2001-01-01") == 0
    assert json.loads(capsys.readouterr().out) == []


def test_show_text_and_json(
    config_file: Path,
    ids: tuple[QuarantineId, QuarantineId],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli(config_file, "show", ids[0]) == 0
    out = capsys.readouterr().out
    assert "Eicar-Test-Signature in 1/e.com by clamav" in out and "eve@evil.example" in out
    assert "\x1b" not in out
    assert cli(config_file, "show", ids[0].upper(), "--json") == 0
    assert json.loads(capsys.readouterr().out)["id"] == ids[0]


def test_show_raw_writes_the_bytes_unchanged(
    config_file: Path,
    ids: tuple[QuarantineId, QuarantineId],
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    assert cli(config_file, "show", ids[0], "--raw") == 0
    assert capfdbinary.readouterr().out == RAW


@pytest.mark.parametrize("action", ["show", "release", "delete"])
@pytest.mark.parametrize(
    ("bad", "words"),
    [("0" * 32, "no quarantined message"), ("../../etc/passwd", "not a quarantine id")],
)
def test_unknown_or_malformed_ids_exit_2(
    config_file: Path,
    ids: object,
    capsys: pytest.CaptureFixture[str],
    action: str,
    bad: str,
    words: str,
) -> None:
    assert cli(config_file, action, bad) == 2
    assert words in capsys.readouterr().err


def test_delete_checks_every_id_first(
    config_file: Path, ids: tuple[QuarantineId, QuarantineId], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(config_file, "delete", ids[0], "f" * 32) == 2
    assert cli(config_file, "delete", ids[0], ids[1]) == 0
    capsys.readouterr()
    assert cli(config_file, "list", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []


def test_release_delivers_once_and_refuses_a_second_time(
    config_file: Path, ids: tuple[QuarantineId, QuarantineId], capsys: pytest.CaptureFixture[str]
) -> None:
    with smtp_sink() as (sink, port):
        text = config_file.read_text().replace("port = 9", f"port = {port}")
        config_file.write_text(text)
        assert cli(config_file, "release", ids[0], "--json") == 0
        assert json.loads(capsys.readouterr().out)["accepted"] == ["bob@local.example"]
        assert cli(config_file, "release", ids[0]) == 2
        assert "already released" in capsys.readouterr().err
        assert cli(config_file, "release", ids[0], "--force", "--to", "admin@local.example") == 0
    assert [m.recipients for m in sink.messages] == [["bob@local.example"], ["admin@local.example"]]
    assert all(
        m.data.startswith(b"X-Mailwarden-Release: v=1; id=" + ids[0].encode())
        for m in sink.messages
    )
    assert (config_file.parent / "release.key").stat().st_mode & 0o077 == 0


def test_release_to_an_unreachable_server_exits_1(
    config_file: Path, ids: tuple[QuarantineId, QuarantineId], capsys: pytest.CaptureFixture[str]
) -> None:
    with smtp_sink() as (_, port):
        pass  # the port is free again: nothing listens there
    config_file.write_text(config_file.read_text().replace("port = 9", f"port = {port}"))
    assert cli(config_file, "release", ids[0]) == 1
    assert "cannot reach" in capsys.readouterr().err


def test_purge_uses_the_retention_periods(
    config_file: Path, ids: tuple[QuarantineId, QuarantineId], capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_store(load_config(config_file))
    store.record_event(ScanEvent(time.time() - 200 * 86400, Envelope(), "clean", "accept"))
    store.close()
    assert cli(config_file, "purge", "--json") == 0
    # both entries are younger than a day; the event is older than 90 days
    assert json.loads(capsys.readouterr().out) == {"messages": 0, "events": 1}


def test_bad_time_is_a_usage_error(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli(config_file, "list", "--since", "yesterday")
    assert info.value.code == 2
    assert "not a time" in capsys.readouterr().err


def test_help_documents_every_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["quarantine", "--help"])
    out = capsys.readouterr().out
    for word in ("list", "show", "release", "delete", "purge", "exit status"):
        assert word in out


def test_every_filter_and_how_they_combine(
    config_file: Path, ids: tuple[QuarantineId, QuarantineId], capsys: pytest.CaptureFixture[str]
) -> None:
    def listed(*args: str) -> list[str]:
        assert cli(config_file, "list", "--json", *args) == 0
        return [e["id"] for e in json.loads(capsys.readouterr().out)]

    first, second = ids
    assert listed() == [second, first]
    assert listed("--point", "mda") == [second] == listed("--point", "s2")
    assert listed("--point", "cli") == [first]  # the envelope's default
    assert listed("--sender", "@EVIL.example") == [first]
    assert listed("--recipient", "ann@other.example") == [second]
    assert listed("--finding", "TROJAN") == [second]
    assert listed("--since", "2001-01-01", "--until", "1h") == []
    assert listed("--since", "1h", "--finding", "eicar", "--recipient", "local.example") == [first]
    assert listed("--finding", "eicar", "--point", "S2") == []
    assert listed("--limit", "1") == [second]
    assert listed("--released") == [] and listed("--not-released") == [second, first]


def test_an_unknown_point_is_a_usage_error(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli(config_file, "list", "--point", "S9")
    assert info.value.code == 2
    assert "not an interception point" in capsys.readouterr().err


@pytest.mark.parametrize("action", [("list",), ("show", "0" * 32), ("purge",)])
def test_postgresql_down_exits_75_naming_the_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], action: tuple[str, ...]
) -> None:
    # a socket folder where no server listens: what a stopped PostgreSQL looks like
    config = tmp_path / "m.toml"
    config.write_text(
        '[store]\nbackend = "postgresql"\n'
        f'dsn = "host={tmp_path} port=5499 dbname=quarantine user=mailwarden"\n'
    )
    assert main(["quarantine", action[0], "-c", str(config), *action[1:]]) == 75
    err = capsys.readouterr().err
    assert "unavailable" in err and "try again" in err
    assert f"PostgreSQL server {tmp_path} port 5499, database quarantine" in err


def test_a_refused_postgresql_login_exits_2_without_the_password(
    postgres: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "pw"
    wrong.write_text("wrong-pass-w0rd\n")
    wrong.chmod(0o600)
    config = tmp_path / "m.toml"
    config.write_text(
        postgres.config(postgres.create_database()).replace(str(postgres.password_file), str(wrong))
    )
    assert main(["quarantine", "list", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert "authentication failed" in err and "wrong-pass-w0rd" not in err
