"""Two gateway nodes on one PostgreSQL: one quarantine, one history; an outage defers mail.

Each node is ``mailwarden smtp-filter`` started from its own configuration
file (its own spool folder, log and port) in front of one recording SMTP
sink; both share one scanning daemon to spare the test machine, and one
private PostgreSQL cluster, which the test stops and starts.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from intercept.harness import EICAR, Stack, free_port, wait_until
from intercept.mail import data_reply, make_message
from mailwarden.config import load_config
from mailwarden.store import QuarantineFilter, open_store
from support.postgres import Cluster, private_cluster
from support.smtp_sink import Sink, smtp_sink

RCPT = "bob@local.example"
SENDER = "someone@remote.example"


@dataclass
class Nodes:
    cluster: Cluster
    a: Stack
    b: Stack
    ports: dict[str, int]
    sink: Sink

    def send(self, node: str, raw: bytes) -> tuple[int, str]:
        return data_reply(self.ports[node], SENDER, [RCPT], raw)

    def quarantine(self, node: str) -> list[dict[str, object]]:
        stack = self.a if node == "a" else self.b
        done = stack.cli("quarantine", "list", "--json", "--limit", "1000")
        entries: list[dict[str, object]] = json.loads(done.stdout)
        return entries


def _on_postgres(stack: Stack, cluster: Cluster, dsn: str) -> None:
    """Point the stack's [store] at PostgreSQL (the harness writes an SQLite one)."""
    text = stack.config.read_text()
    store = cluster.config(dsn).removeprefix("[store]\n")
    text = re.sub(r'(?m)^database = ".*"\n', store, text, count=1)
    stack.config.write_text(text)


@pytest.fixture
def nodes() -> Iterator[Nodes]:
    with private_cluster() as cluster, smtp_sink() as (sink, sink_port):
        dsn = cluster.create_database()
        root = Path(tempfile.mkdtemp(prefix="mw2n-"))
        a, b = Stack.create(root / "a"), Stack.create(root / "b")
        for stack in (a, b):
            _on_postgres(stack, cluster, dsn)
        # the same release secret on both nodes, as docs/quarantine.md asks
        b.config.write_text(b.config.read_text().replace(str(b.root), str(a.root)))
        b.config.write_text(
            b.config.read_text().replace(f'"{a.root}/store/quarantine"', f'"{b.root}/spool"')
        )
        ports = {"a": free_port(), "b": free_port()}
        try:
            a.start_daemon()
            b.socket = a.socket
            downstream = f"127.0.0.1:{sink_port}"
            for name, stack in (("a", a), ("b", b)):
                stack.start_agent(name, "smtp-filter", ports[name], "--downstream", downstream)
            yield Nodes(cluster, a, b, ports, sink)
        finally:
            b.stop_all()
            a.stop_all()


def test_two_nodes_one_quarantine_one_history_and_an_outage_defers(nodes: Nodes) -> None:
    infected_a, mid_a = make_message(sender=SENDER, to=RCPT, attachment=EICAR)
    infected_b, mid_b = make_message(sender=SENDER, to=RCPT, attachment=EICAR)
    assert nodes.send("a", infected_a)[0] == 250
    assert nodes.send("b", infected_b)[0] == 250
    # each node lists what the other quarantined
    assert len(nodes.quarantine("a")) == len(nodes.quarantine("b")) == 2
    config = load_config(nodes.b.config)
    store = open_store(config)
    assert {e.envelope.agent for e in store.entries()} == {"smtp-filter"}
    assert [e.action for e in store.events()] == ["quarantine", "quarantine"]
    qid = nodes.quarantine("b")[0]["id"]
    assert nodes.a.cli("quarantine", "show", str(qid), "--json").returncode == 0

    # PostgreSQL goes down: infected mail is deferred, clean mail still flows
    nodes.cluster.stop()
    during, mid = make_message(sender=SENDER, to=RCPT, attachment=EICAR)
    code, text = nodes.send("a", during)
    assert code == 451 and "try again" in text.lower(), (code, text)
    clean, clean_mid = make_message(sender=SENDER, to=RCPT)
    assert nodes.send("b", clean)[0] == 250
    assert [m for m in nodes.sink.messages if clean_mid.encode() in m.data]
    down = nodes.a.cli("quarantine", "list", check=False)
    assert down.returncode == 75 and "PostgreSQL server" in down.stderr

    # back up: the MTA's retry is quarantined, exactly once
    nodes.cluster.start()
    replies: list[int] = []

    def retried() -> bool:
        replies.append(nodes.send("a", during)[0])
        return replies[-1] == 250

    wait_until(retried, 30, "the retry to be accepted")
    assert set(replies[:-1]) <= {451}
    entries = store.entries(QuarantineFilter(limit=1000))
    raws = [store.read(e.id) for e in entries]
    assert len(entries) == 3
    assert sum(mid.encode() in raw for raw in raws) == 1
    assert not [m for m in nodes.sink.messages if mid.encode() in m.data]
    assert {mid_a.encode() in r or mid_b.encode() in r or mid.encode() in r for r in raws} == {True}
    store.close()
