"""PostgreSQL store: two nodes on one database, the password, outages and restarts.

The contract it shares with SQLite is in ``test_base.py``; these tests need a
real server (Debian's postgresql, a private cluster per session, or per test
where the test stops it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailwarden.config import load_config
from mailwarden.errors import ConfigError
from mailwarden.message import Envelope
from mailwarden.store import (
    QuarantineFilter,
    ScanEvent,
    StoreError,
    StoreUnavailableError,
    UnknownIdError,
    open_store,
)
from mailwarden.store import postgres as postgres_module
from mailwarden.store.postgres import PostgresStore
from mailwarden.verdict import Finding, Status, Verdict
from support.postgres import Cluster, private_cluster

RAW = b"From: a@x.example\r\nSubject: hello\r\n\r\nbody\r\n"
EICAR = Verdict(Status.INFECTED, (Finding("Eicar-Test-Signature", "1/e.com", "clamav"),))
ENV = Envelope("a@x.example", ("bob@local.example",), agent="smtp-filter")


def node(cluster: Cluster, dsn: str, tmp_path: Path, name: str) -> PostgresStore:
    """A node's store, opened from its own configuration file as the agents do."""
    config = tmp_path / f"{name}.toml"
    config.write_text(cluster.config(dsn) + f'spool_dir = "{tmp_path}/{name}-spool"\n')
    store = open_store(load_config(config))
    assert isinstance(store, PostgresStore)
    return store


def test_two_nodes_see_one_quarantine_and_one_history(postgres: Cluster, tmp_path: Path) -> None:
    dsn = postgres.create_database()
    a, b = node(postgres, dsn, tmp_path, "a"), node(postgres, dsn, tmp_path, "b")
    qid = a.put(RAW, ENV, EICAR, "policy.infected")
    a.record_event(ScanEvent(1.0, ENV, "infected", "quarantine", quarantine_id=qid))
    b.record_event(ScanEvent(2.0, ENV, "clean", "accept"))
    # node b lists, reads and releases what node a quarantined
    assert [e.id for e in b.entries(QuarantineFilter(finding="eicar"))] == [qid]
    assert b.read(qid) == RAW
    b.mark_released(qid, ("bob@local.example",))
    assert a.get(qid).released_to == ("bob@local.example",)
    assert (
        [e.action for e in a.events()]
        == [e.action for e in b.events()]
        == [
            "accept",
            "quarantine",
        ]
    )
    # nothing of it was written beside either node
    assert not (tmp_path / "a-spool").exists() and not (tmp_path / "b-spool").exists()
    a.delete(qid)
    with pytest.raises(UnknownIdError):
        b.read(qid)


def test_a_newer_schema_is_refused(postgres: Cluster) -> None:
    dsn = postgres.create_database()
    PostgresStore(dsn, password_file=postgres.password_file).ping()
    postgres.psql("UPDATE schema_version SET version = 99", dsn.split("dbname=")[1].split()[0])
    with pytest.raises(StoreError, match="newer"):
        PostgresStore(dsn, password_file=postgres.password_file).ping()


def test_password_file_rules_and_no_password_in_errors(postgres: Cluster, tmp_path: Path) -> None:
    dsn = postgres.create_database()
    loose = tmp_path / "loose"
    loose.write_text(postgres.password)
    os.chmod(loose, 0o644)
    with pytest.raises(StoreError, match="chmod 600"):
        PostgresStore(dsn, password_file=loose).ping()
    with pytest.raises(StoreError, match="No such file"):
        PostgresStore(dsn, password_file=tmp_path / "absent").ping()
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password-s3cr3t\n")
    os.chmod(wrong, 0o600)
    with pytest.raises(StoreError) as info:
        PostgresStore(dsn, password_file=wrong).ping()
    assert not isinstance(info.value, StoreUnavailableError)  # a setting to fix
    text = str(info.value)
    assert "PostgreSQL server" in text and str(postgres.socket_dir) in text
    assert "mailwarden" in text and "s3cr3t" not in text and postgres.password not in text


def test_a_password_in_the_dsn_is_a_config_error(tmp_path: Path) -> None:
    for dsn in ("host=db password=hunter2 dbname=m", "postgresql://u:hunter2@db/m"):
        config = tmp_path / "m.toml"
        config.write_text(f'[store]\nbackend = "postgresql"\ndsn = "{dsn}"\n')
        with pytest.raises(ConfigError, match="password_file") as info:
            load_config(config)
        assert "m.toml" in str(info.value) and "dsn" in str(info.value)


def test_a_malformed_dsn_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match=r"\[store\] dsn"):
        PostgresStore("host=db dbname")


def test_an_outage_fails_each_call_clearly_and_the_store_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with private_cluster() as cluster:
        store = PostgresStore(cluster.create_database(), password_file=cluster.password_file)
        first = store.put(RAW, ENV, EICAR, "r")
        cluster.stop()
        for call in (
            lambda: store.put(RAW, ENV, EICAR, "r"),
            store.entries,
            lambda: store.record_event(ScanEvent(1.0, ENV, "clean", "accept")),
            store.ping,
        ):
            with pytest.raises(StoreUnavailableError, match="PostgreSQL server") as info:
                call()
            assert str(cluster.socket_dir) in str(info.value)
        monkeypatch.setattr(postgres_module, "RETRY_AFTER", 0.0)
        cluster.start()
        second = store.put(RAW, ENV, EICAR, "r")
        # the put that failed during the outage left nothing behind
        assert {e.id for e in store.entries()} == {first, second}


def test_a_server_restart_between_calls_is_not_an_error() -> None:
    with private_cluster() as cluster:
        store = PostgresStore(cluster.create_database(), password_file=cluster.password_file)
        qid = store.put(RAW, ENV, EICAR, "r")
        cluster.stop()
        cluster.start()
        # the idle connection died with the server; the call runs on a new one
        assert store.get(qid).id == qid
        cluster.stop()
        cluster.start()
        other = store.put(RAW, ENV, EICAR, "r")
        assert {e.id for e in store.entries()} == {qid, other}
