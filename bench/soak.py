"""Soak test: many concurrent SMTP sessions through a real Postfix and mailwarden's filter.

Usage (from the repository root, as root: Postfix's master needs it)::

    .venv/bin/python bench/soak.py                              # 200 sessions, 10 minutes
    .venv/bin/python bench/soak.py --sessions 20 --minutes 1    # a short run
    .venv/bin/python bench/soak.py --fault kill-daemon --fault-at 30
    .venv/bin/python bench/soak.py --agent milter               # the milter instead
    .venv/bin/python bench/soak.py --agent imap-proxy --sessions 20   # the IMAP proxy

The run: the shared corpus (``../shared/bench/make_corpus.py``, 5% infected)
is sent by ``--sessions`` SMTP clients, each keeping one session open and
sending message after message, to a private Postfix on loopback
(``tests/support/postfix.py``).  With ``--agent smtp-filter`` (the default)
Postfix hands every message to ``mailwarden smtp-filter`` (content_filter,
FILTER_README) and gets it back on its re-injection port; with ``--agent
milter`` Postfix asks ``mailwarden milter`` before it accepts.  Mail goes to
``remote.example``, which Postfix relays to the shared benchmark sink
(``smtp_sink.py``), so every delivered message is logged with its id.

Every copy sent gets its own ``X-Bench-Id`` (corpus id plus a sequence
number) and Message-ID.  At the end, after Postfix's queue has drained (or
``--drain-minutes`` have passed), each id that Postfix accepted must be found
exactly once: delivered to the sink (clean mail, tagged) or in mailwarden's
quarantine (infected mail; the policy is ``infected = "quarantine"``).  The
report counts lost (accepted, found nowhere, not queued), duplicated (found
twice), wrong (delivered when the policy quarantines, or the reverse), still
queued, and refused at the SMTP dialogue (the client knows, so not lost).
Resident memory of the daemon (with its workers) and of the agent is sampled
every ``--sample`` seconds: first, last and maximum are reported.

With ``--agent imap-proxy`` there is no Postfix: a private Dovecot holds
``--corpus`` messages (1% with EICAR, ``bench/download.py``'s corpus) and
each session fetches random messages through ``mailwarden imap-proxy``
(``UID FETCH n BODY.PEEK[]``) until the time is up.  Every answer must be
the message exactly as Dovecot serves it, or for an infected one the
replacement without EICAR; a fetch that fails (NO, a closed connection) is
counted as refused (the client keeps the message on the server and asks
again), one that returns anything else as wrong.

Faults (``--fault``, at ``--fault-at`` seconds; see bench/faults.py for the
table of all of them): ``kill-daemon`` (kill -9, then started again after
``--fault-downtime`` seconds), ``kill-worker`` (kill -9 of one scanning
worker; the daemon replaces it), ``kill-agent`` (kill -9 of the filter or
milter, started again after the downtime), ``scan-timeout`` (the daemon is
restarted with ``[daemon] scan_timeout`` at its minimum, 0.1 s, so scans
that need longer time out, for the downtime, then restarted as before),
``quarantine-full`` (the quarantine folder is a 256 MiB tmpfs that a filler
file fills for the downtime), ``postgres-stopped`` (with ``--store
postgresql``: the quarantine and history live in a private PostgreSQL
cluster, stopped for the downtime and started again), ``kill-serve`` (with ``--supervised``: the
daemon and the filter run under ``mailwarden serve``, which is killed with
-9 and started again after the downtime; its orphaned children are listed in
the events and stopped at the end).  The report then adds how long after the fault
the first message was delivered again.

Prints one JSON line and a Markdown table row; ``--keep`` leaves the run's
folder (logs, queue, sink log) for inspection.

SECURITY: everything listens on 127.0.0.1 or on unix sockets in a private
temporary folder; every process started is stopped by its PID; only the
generated corpus (EICAR and ClamAV's harmless test files) is sent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from intercept.harness import Stack, free_port, port_open, wait_until  # noqa: E402
from support.benchdata import (  # noqa: E402
    bench_work_dir,
    load_manifest,
    make_corpus,
    make_sigs,
    shared_bench_dir,
)
from support.postfix import REMOTE, PostfixInstance, add_milter_service  # noqa: E402

POLICY = """
[network]
local_domains = ["test.example"]

[policy]
infected = "quarantine"
suspicious = "tag"
unscanned = "tag"
error = "defer"
after_queue_reject = "quarantine"

[headers]
hostname = "gw.test.example"
"""
FAULTS = (
    "none",
    "postgres-stopped",
    "kill-daemon",
    "kill-worker",
    "kill-agent",
    "kill-serve",
    "scan-timeout",
    "quarantine-full",
)
_BENCH_ID = re.compile(rb"^X-Bench-Id:[ \t]*([^\r\n]*)", re.MULTILINE | re.IGNORECASE)
_MESSAGE_ID = re.compile(rb"^Message-ID:[^\r\n]*\r?\n", re.MULTILINE | re.IGNORECASE)


@dataclass
class Sent:
    expected: str  # "delivered" or "quarantined"
    code: int = 0
    accepted_at: float = 0.0


@dataclass
class Run:
    args: argparse.Namespace
    root: Path
    stack: Stack
    postfix: PostfixInstance
    sink: subprocess.Popen[bytes]
    sink_log: Path
    agent_port: int
    milter_socket: str
    sent: dict[str, Sent] = field(default_factory=dict)
    refused: Counter[int] = field(default_factory=Counter)
    rss: dict[str, list[int]] = field(default_factory=lambda: {"daemon": [], "agent": []})
    fault_time: float | None = None
    #: children of a killed serve, stopped at the end
    orphans: list[int] = field(default_factory=list)
    #: the private PostgreSQL cluster of --store postgresql, and its exit
    cluster: Any = None
    resources: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    events: list[str] = field(default_factory=list)


# --- set-up ---------------------------------------------------------------------------


def _postconf(pf: PostfixInstance, *settings: str) -> None:
    subprocess.run(["postconf", "-c", str(pf.config_dir), "-e", *settings], check=True)


def _start_serve(run: Run) -> None:
    proc = run.stack._spawn("serve", ["serve", "-c", str(run.stack.config)])

    def up() -> bool:
        if proc.popen.poll() is not None:
            raise AssertionError(f"serve exited: {proc.output()}")
        return port_open(run.agent_port)

    wait_until(up, 120, "serve's filter")


def _start_agent(run: Run) -> None:
    reinject = f"127.0.0.1:{run.postfix.ports['reinject']}"
    if run.args.agent == "milter":
        proc = run.stack._spawn(
            "agent",
            [
                "milter",
                "-c",
                str(run.stack.config),
                "--socket",
                f"unix:{run.milter_socket}",
                "--daemon-socket",
                run.stack.socket,
            ],
        )
        wait_until(lambda: os.path.exists(run.milter_socket), 30, "the milter socket")
        del proc
    else:
        run.stack.start_agent("agent", "smtp-filter", run.agent_port, "--downstream", reinject)


def set_up(args: argparse.Namespace) -> Run:
    work = bench_work_dir()
    corpus = make_corpus(work / f"corpus-{args.corpus}", n=args.corpus)
    hashes, bodies = (200_000, 20_000) if args.full_signatures else (20_000, 2_000)
    sigs = make_sigs(work / f"sigs-{hashes}-{bodies}", hashes=hashes, bodies=bodies)
    root = Path(tempfile.mkdtemp(prefix="mw-soak-"))
    root.chmod(0o755)  # Postfix's users live below it
    sink_port = free_port()
    sink_log = root / "sink.jsonl"
    sink = subprocess.Popen(
        [
            *(sys.executable, str(shared_bench_dir() / "smtp_sink.py")),
            *("--port", str(sink_port), "--log", str(sink_log), "--truncate"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(lambda: port_open(sink_port), 30, "the sink")
    postfix = PostfixInstance.create_on_free_ports(root / "postfix", relay_port=sink_port)
    # a deferred message comes back within seconds, so recovery shows in a short run
    _postconf(
        postfix,
        "queue_run_delay=5s",
        "minimal_backoff_time=5s",
        "maximal_backoff_time=20s",
        f"default_process_limit={max(100, args.sessions + 20)}",
        "smtpd_client_connection_count_limit=0",
        "smtpd_client_connection_rate_limit=0",
        "smtpd_client_message_rate_limit=0",
    )
    stack = Stack.create(root / "mw", extra_toml="", workers=args.workers)
    text = (
        stack.config.read_text()
        .replace("databases = []", f'databases = ["{sigs}"]')
        .replace('cache_dir = ""', f'cache_dir = "{root / "cache"}"')
    )
    # the MTA's user must reach the milter's socket
    milter = '\n[milter]\nsocket_mode = "0666"\n' if args.agent == "milter" else ""
    served = ""
    if args.supervised:
        reinject = f"127.0.0.1:{postfix.ports['reinject']}"
        # root stays root: serve's drop to another user is not what is measured here
        served = (
            '\n[serve]\nagents = ["smtp-filter"]\nuser = "root"\n'
            f'\n[smtp_filter]\nlisten = "127.0.0.1:{postfix.ports["filter"]}"\n'
            f'downstream = "{reinject}"\n'
        )
    resources = contextlib.ExitStack()
    cluster = None
    if args.store == "postgresql":
        from support.postgres import private_cluster

        cluster = resources.enter_context(private_cluster())
        dsn = cluster.create_database()
        text = text.replace(
            "[store]\n",
            f'[store]\nbackend = "postgresql"\ndsn = "{dsn}"\n'
            f'password_file = "{cluster.password_file}"\n',
            1,
        )
    stack.config.write_text(text + POLICY + milter + served)
    if args.fault == "quarantine-full":
        spool = stack.root / "store" / "quarantine"
        spool.mkdir(parents=True, mode=0o700)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256m,mode=0700", "tmpfs", str(spool)], check=True
        )
    milter_socket = str(root / "milter.sock")
    run = Run(args, root, stack, postfix, sink, sink_log, postfix.ports["filter"], milter_socket)
    run.cluster, run.resources = cluster, resources
    if args.agent == "milter":
        add_milter_service(postfix, port=free_port(), milter=f"unix:{milter_socket}")
    postfix.start()
    if args.supervised:
        _start_serve(run)
    else:
        stack.start_daemon()
        _start_agent(run)
    run.corpus = corpus  # type: ignore[attr-defined]
    return run


def tear_down(run: Run) -> None:
    run.stack.stop_all()
    for pid in run.orphans:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    run.postfix.stop()
    if run.args.fault == "quarantine-full":
        subprocess.run(["umount", str(run.stack.root / "store" / "quarantine")], check=False)
    run.resources.close()
    with contextlib.suppress(ProcessLookupError):
        run.sink.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        run.sink.wait(20)
    if not run.args.keep:
        shutil.rmtree(run.root, ignore_errors=True)


# --- the clients ------------------------------------------------------------------------


def _load(corpus: Path) -> list[tuple[str, bytes, str]]:
    out = []
    for entry in load_manifest(corpus):
        expected = "quarantined" if entry["verdict"] == "infected" else "delivered"
        out.append((entry["bench_id"], (corpus / entry["file"]).read_bytes(), expected))
    return out


def _copy(raw: bytes, copy_id: str) -> bytes:
    raw = _BENCH_ID.sub(b"X-Bench-Id: " + copy_id.encode(), raw, count=1)
    return _MESSAGE_ID.sub(f"Message-ID: <{copy_id}@soak.example>\r\n".encode(), raw, count=1)


async def _client(
    run: Run, messages: list[tuple[str, bytes, str]], seq: list[int], end: float
) -> None:
    import aiosmtplib

    port = run.postfix.ports["filtered" if run.args.agent == "smtp-filter" else "milter"]
    smtp: aiosmtplib.SMTP | None = None
    while time.monotonic() < end:
        index = seq[0]
        seq[0] += 1
        bench_id, raw, expected = messages[index % len(messages)]
        copy_id = f"{bench_id}-{index}"
        sent = run.sent[copy_id] = Sent(expected)
        try:
            if smtp is None:
                smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=300)
                await smtp.connect()
            await smtp.sendmail(f"sender@{REMOTE}", [f"user@{REMOTE}"], _copy(raw, copy_id))
            sent.code = 250
            sent.accepted_at = time.time()
        except aiosmtplib.SMTPResponseException as exc:
            sent.code = exc.code
            run.refused[exc.code] += 1
        except (aiosmtplib.SMTPException, OSError) as exc:
            sent.code = -1
            run.refused[-1] += 1
            run.events.append(f"{time.monotonic():.1f} client: {type(exc).__name__}")
            if smtp is not None:
                with contextlib.suppress(Exception):
                    smtp.close()
            smtp = None
            await asyncio.sleep(1)
    if smtp is not None:
        with contextlib.suppress(Exception):
            await smtp.quit()


async def blast(run: Run) -> None:
    messages = _load(run.corpus)  # type: ignore[attr-defined]
    end = time.monotonic() + run.args.minutes * 60
    seq = [0]
    await asyncio.gather(*(_client(run, messages, seq, end) for _ in range(run.args.sessions)))


# --- memory and faults ------------------------------------------------------------------


def memory(values: list[int], every: float) -> dict[str, Any] | None:
    """First, last and largest sample in MiB, and the largest of each minute.

    The minutes show whether memory levels off (warm-up, the busiest
    moment's buffers) or keeps climbing (a leak).
    """
    if not values:
        return None
    mib = 1024 * 1024
    per_minute = max(1, round(60 / every))
    return {
        "first": round(values[0] / mib, 1),
        "last": round(values[-1] / mib, 1),
        "max": round(max(values) / mib, 1),
        "by_minute": [
            round(max(values[i : i + per_minute]) / mib, 1)
            for i in range(0, len(values), per_minute)
        ],
    }


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


def sample(run: Run, stop: threading.Event) -> None:
    while not stop.wait(run.args.sample):
        for name in ("daemon", "agent"):
            # under serve, "daemon" is serve with everything it started
            proc = run.stack.procs.get(
                "serve" if run.args.supervised and name == "daemon" else name
            )
            if proc is not None and proc.popen.poll() is None:
                run.rss[name].append(_tree_rss(proc.popen.pid))


def inject(run: Run, stop: threading.Event) -> None:
    fault = run.args.fault
    if fault == "none" or stop.wait(run.args.fault_at):
        return
    run.fault_time = time.time()
    if fault == "kill-worker":
        import psutil

        daemon = psutil.Process(run.stack.procs["daemon"].popen.pid)
        workers = daemon.children(recursive=True)
        if workers:
            os.kill(workers[-1].pid, signal.SIGKILL)
            run.events.append(f"kill -9 worker {workers[-1].pid}")
        return
    if fault == "scan-timeout":
        _scan_timeout(run, stop)
        return
    if fault == "quarantine-full":
        _fill_quarantine(run, stop)
        return
    if fault == "kill-serve":
        _kill_serve(run, stop)
        return
    if fault == "postgres-stopped":
        run.cluster.stop()
        run.events.append("PostgreSQL stopped")
        stop.wait(run.args.fault_downtime)
        run.cluster.start()
        run.events.append("PostgreSQL started again")
        return
    name = "daemon" if fault == "kill-daemon" else "agent"
    proc = run.stack.procs[name]
    os.kill(proc.popen.pid, signal.SIGKILL)
    proc.popen.wait(10)
    run.events.append(f"kill -9 {name} {proc.popen.pid}")
    if stop.wait(run.args.fault_downtime):
        return
    if name == "daemon":
        with contextlib.suppress(FileNotFoundError):
            os.unlink(run.stack.socket)
        run.stack.start_daemon()
    else:
        restart = getattr(run, "restart_agent", None)
        if restart is not None:
            restart()
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(run.milter_socket)
            _start_agent(run)
    run.events.append(f"{name} started again")


def _kill_serve(run: Run, stop: threading.Event) -> None:
    import psutil

    proc = run.stack.procs["serve"]
    children = [c.pid for c in psutil.Process(proc.popen.pid).children(recursive=True)]
    os.kill(proc.popen.pid, signal.SIGKILL)
    proc.popen.wait(10)
    run.events.append(f"kill -9 serve {proc.popen.pid}")
    time.sleep(1)
    alive = [pid for pid in children if psutil.pid_exists(pid)]
    run.orphans.extend(alive)
    run.events.append(f"{len(alive)} of its {len(children)} children still running after 1 s")
    if stop.wait(run.args.fault_downtime):
        return
    # the children get SIGTERM when serve dies and shut down gracefully
    left = [pid for pid in alive if psutil.pid_exists(pid)]
    run.events.append(f"{len(left)} still running when serve is started again")
    new = run.stack._spawn("serve", ["serve", "-c", str(run.stack.config)])
    time.sleep(10)
    state = "running" if new.popen.poll() is None else f"exited: {new.output(400)!r}"
    run.events.append(f"serve started again: {state}")


def _restart_daemon(run: Run) -> None:
    run.stack.stop_daemon()
    run.stack.start_daemon()


def _scan_timeout(run: Run, stop: threading.Event) -> None:
    normal = run.stack.config.read_text()
    run.stack.config.write_text(normal.replace("[daemon]\n", "[daemon]\nscan_timeout = 0.1\n", 1))
    _restart_daemon(run)
    run.events.append("daemon restarted with scan_timeout = 0.1")
    stop.wait(run.args.fault_downtime)
    run.stack.config.write_text(normal)
    _restart_daemon(run)
    run.events.append("daemon restarted with its normal scan_timeout")


def _fill_quarantine(run: Run, stop: threading.Event) -> None:
    filler = run.stack.root / "store" / "quarantine" / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as fh:
        while True:
            fh.write(bytes(1024 * 1024))
            fh.flush()
    run.events.append("quarantine file system full")
    stop.wait(run.args.fault_downtime)
    filler.unlink()
    run.events.append("quarantine file system has room again")


# --- accounting -------------------------------------------------------------------------


def _delivered(run: Run) -> tuple[Counter[str], dict[str, float]]:
    seen: Counter[str] = Counter()
    times: dict[str, float] = {}
    with contextlib.suppress(FileNotFoundError), run.sink_log.open() as fh:
        for line in fh:
            rec = json.loads(line)
            if rec.get("bench_id"):
                seen[rec["bench_id"]] += 1
                times.setdefault(rec["bench_id"], float(rec["t"]))
    return seen, times


def _quarantined(run: Run) -> Counter[str]:
    seen: Counter[str] = Counter()
    if run.args.store == "postgresql":
        from mailwarden.config import load_config
        from mailwarden.store import QuarantineFilter, open_store

        store = open_store(load_config(run.stack.config))
        for entry in store.entries(QuarantineFilter(limit=10**7)):
            m = _BENCH_ID.search(store.read(entry.id)[:65536])
            if m:
                seen[m.group(1).strip().decode()] += 1
        return seen
    for path in (run.stack.root / "store" / "quarantine").rglob("*.eml"):
        head = path.read_bytes()[:65536]
        m = _BENCH_ID.search(head)
        if m:
            seen[m.group(1).strip().decode()] += 1
    return seen


def drain(run: Run) -> int:
    deadline = time.monotonic() + run.args.drain_minutes * 60
    while time.monotonic() < deadline:
        queued = len(run.postfix.queue())
        if queued == 0:
            return 0
        run.postfix.flush()
        time.sleep(5)
    return len(run.postfix.queue())


def account(run: Run, queued: int) -> dict[str, Any]:
    delivered, times = _delivered(run)
    quarantined = _quarantined(run)
    accepted = {k: s for k, s in run.sent.items() if s.code == 250}
    found = delivered + quarantined
    lost = [k for k in accepted if found[k] == 0]
    duplicated = [k for k, n in found.items() if n > 1]
    wrong = [
        k
        for k, s in accepted.items()
        if (s.expected == "delivered" and quarantined[k])
        or (s.expected == "quarantined" and delivered[k])
    ]
    recovery = None
    if run.fault_time is not None:
        # a killed worker is replaced at once; the others are undone after the downtime
        pause = 0.0 if run.args.fault == "kill-worker" else run.args.fault_downtime
        after = [t for t in times.values() if t > run.fault_time + pause]
        recovery = round(min(after) - run.fault_time, 1) if after else None

    waits = sorted(times[k] - s.accepted_at for k, s in accepted.items() if k in times)

    return {
        "agent": run.args.agent,
        "sessions": run.args.sessions,
        "minutes": run.args.minutes,
        "fault": run.args.fault,
        "sent": len(run.sent),
        "accepted": len(accepted),
        "refused": dict(run.refused),
        "delivered": sum(1 for k in accepted if delivered[k]),
        "quarantined": sum(1 for k in accepted if quarantined[k]),
        "queued_at_end": queued,
        "lost": len(lost) if queued == 0 else f"{len(lost)} (of which up to {queued} still queued)",
        "duplicated": len(duplicated),
        # from Postfix's 250 to the sink: queueing, scanning, and any retry after a fault
        "delivery_s": {
            "p50": round(waits[len(waits) // 2], 2) if waits else None,
            "p99": round(waits[int(len(waits) * 0.99)], 2) if waits else None,
            "max": round(waits[-1], 2) if waits else None,
        },
        "delayed_over_30s": sum(1 for w in waits if w > 30),
        "wrong": len(wrong),
        "first_delivery_after_fault_s": recovery,
        "rss_daemon_mib": memory(run.rss["daemon"], run.args.sample),
        "rss_agent_mib": memory(run.rss["agent"], run.args.sample),
        "events": run.events[:20],
        "examples": {"lost": lost[:5], "duplicated": duplicated[:5], "wrong": wrong[:5]},
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "command": " ".join(["bench/soak.py", *sys.argv[1:]]),
    }


# --- the IMAP proxy -----------------------------------------------------------------------


def soak_imap(args: argparse.Namespace) -> int:
    """Fetch through ``mailwarden imap-proxy`` from ``--sessions`` clients; see the module doc."""
    import random

    sys.path.insert(0, str(REPO / "bench"))
    from download import PASSWORD, USER, ImapPath, corpus

    from support.dovecot import EICAR, DovecotInstance, available

    why = available()
    if why:
        raise SystemExit(f"bench/soak.py: {why}")
    count = min(args.corpus, 500)
    root = Path(tempfile.mkdtemp(prefix="mw-soak-imap-"))
    root.chmod(0o755)
    dovecot = DovecotInstance.create(root / "dovecot", users={USER: PASSWORD})
    for i, raw in enumerate(corpus(count)):
        dovecot.deliver(USER, raw, name=f"{1000 + i}.M{i}.soak")
    port = free_port()
    stack = Stack.create(
        root / "mw",
        workers=args.workers,
        extra_toml=f'[imap_proxy]\nserver = "127.0.0.1:{dovecot.ports["imap"]}"\n',
    )
    infected = {n for n in range(1, count + 1) if (n - 1) % 100 == 50}
    tally: Counter[str] = Counter()
    lock = threading.Lock()
    stop = threading.Event()
    try:
        dovecot.start()
        stack.start_daemon()
        stack.start_agent("agent", "imap-proxy", port)
        direct = ImapPath(dovecot.ports["imap"])
        truth = {n: direct.fetch(n) for n in range(1, count + 1)}
        direct.close()
        run = Run(args, root, stack, None, None, root, port, "")  # type: ignore[arg-type]
        run.restart_agent = lambda: stack.start_agent("agent", "imap-proxy", port)  # type: ignore[attr-defined]
        end = time.monotonic() + args.minutes * 60

        def client(seed: int) -> None:
            rng = random.Random(seed)
            box: ImapPath | None = None
            while time.monotonic() < end:
                n = rng.randint(1, count)
                try:
                    if box is None:
                        box = ImapPath(port)
                    got = box.fetch(n)
                except Exception:
                    outcome = "refused"
                    box = None
                    time.sleep(1)
                else:
                    if n in infected:
                        outcome = "replaced" if got and EICAR not in got else "wrong"
                    else:
                        outcome = "served" if got == truth[n] else "wrong"
                with lock:
                    tally[outcome] += 1
            if box is not None:
                with contextlib.suppress(Exception):
                    box.close()

        helpers = [
            threading.Thread(target=sample, args=(run, stop), daemon=True),
            threading.Thread(target=inject, args=(run, stop), daemon=True),
        ]
        for t in helpers:
            t.start()
        clients = [threading.Thread(target=client, args=(i,)) for i in range(args.sessions)]
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        stop.set()
        for t in helpers:
            t.join(60)
    finally:
        stop.set()
        stack.stop_all()
        dovecot.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    report = {
        "agent": "imap-proxy",
        "sessions": args.sessions,
        "minutes": args.minutes,
        "fault": args.fault,
        "fetches": sum(tally.values()),
        **dict(tally),
        "rss_daemon_mib": memory(run.rss["daemon"], run.args.sample),
        "rss_agent_mib": memory(run.rss["agent"], run.args.sample),
        "events": run.events[:20],
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "command": " ".join(["bench/soak.py", *sys.argv[1:]]),
    }
    print(json.dumps(report))
    return 1 if tally["wrong"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=200, help="concurrent SMTP sessions (200)")
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to send (10)")
    parser.add_argument(
        "--agent", choices=("smtp-filter", "milter", "imap-proxy"), default="smtp-filter"
    )
    parser.add_argument("--corpus", type=int, default=2000, help="corpus size (2000)")
    parser.add_argument("--workers", type=int, default=2, help="daemon workers (2)")
    parser.add_argument("--full-signatures", action="store_true", help="220k signatures, not 22k")
    parser.add_argument("--fault", choices=FAULTS, default="none")
    parser.add_argument("--fault-at", type=float, default=30.0, help="seconds into the run (30)")
    parser.add_argument(
        "--fault-downtime", type=float, default=5.0, help="seconds before a restart (5)"
    )
    parser.add_argument(
        "--drain-minutes", type=float, default=5.0, help="wait for Postfix's queue (5)"
    )
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples (5)")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder")
    parser.add_argument(
        "--store", choices=("sqlite", "postgresql"), default="sqlite", help="quarantine backend"
    )
    parser.add_argument(
        "--supervised", action="store_true", help="run the daemon and filter under mailwarden serve"
    )
    args = parser.parse_args(argv)
    if args.fault == "postgres-stopped" and args.store != "postgresql":
        parser.error("--fault postgres-stopped needs --store postgresql")
    if args.fault == "kill-serve" and not args.supervised:
        parser.error("--fault kill-serve needs --supervised")
    if args.supervised and args.agent != "smtp-filter":
        parser.error("--supervised runs the smtp-filter only")
    if os.geteuid() != 0:
        parser.error("must run as root (Postfix's and Dovecot's masters start as root)")
    if args.agent == "imap-proxy":
        return soak_imap(args)
    run = set_up(args)
    stop = threading.Event()
    threads = [
        threading.Thread(target=sample, args=(run, stop), daemon=True),
        threading.Thread(target=inject, args=(run, stop), daemon=True),
    ]
    try:
        for t in threads:
            t.start()
        asyncio.run(blast(run))
        queued = drain(run)
        stop.set()
        for t in threads:
            t.join(60)
        report = account(run, queued)
    finally:
        stop.set()
        tear_down(run)
    print(json.dumps(report))
    print(
        f"| {report['agent']} | {report['sessions']} | {report['minutes']} | {report['fault']} "
        f"| {report['accepted']} | {report['delivered']} | {report['quarantined']} "
        f"| {report['lost']} | {report['duplicated']} | {report['wrong']} "
        f"| {report['first_delivery_after_fault_s']} | {report['rss_daemon_mib']} "
        f"| {report['rss_agent_mib']} | {report['load_average'][0]} |"
    )
    return 1 if report["lost"] or report["duplicated"] else 0


if __name__ == "__main__":
    sys.exit(main())
