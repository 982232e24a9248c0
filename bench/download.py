"""Download-proxy benchmark: fetching 1,000 messages through mailwarden's POP3 and IMAP
proxies against fetching them straight from Dovecot, in one run.

Usage (from the repository root, as root: Dovecot drops to its own users)::

    .venv/bin/python bench/download.py                    # 1,000 messages
    .venv/bin/python bench/download.py --messages 200     # quicker
    .venv/bin/python bench/download.py --write            # and update BENCHMARKS.md

One private Dovecot (``tests/support/dovecot.py``) holds one mailbox of
``--messages`` messages (2-60 KB of text and base64 attachments, 1% with
EICAR); ``mailwarden daemon`` (bundled signatures) and ``mailwarden
pop3-proxy`` / ``imap-proxy`` run as the CLI runs them, plain text on
loopback on both sides.  One client session per path fetches every message
in turn (POP3 ``RETR n``, IMAP ``UID FETCH n BODY.PEEK[]``), timing each
fetch, direct and proxied interleaved message by message so both see the
same machine load.  Reported per path: messages/s, MB/s, fetch latency
p50/p99; and for the proxies the overhead per clean message beyond the
scan: ``proxied - direct - scan``, message by message, where ``scan`` is
the daemon's part of that very fetch as the proxy's JSON log records it
(p50 and p99; the target is under 2 ms at p50).

SECURITY: everything listens on 127.0.0.1 or lives in a private temporary
folder and is stopped by PID; the only "virus" is the EICAR test string.
"""

from __future__ import annotations

import argparse
import base64
import imaplib
import json
import os
import platform
import poplib
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from intercept.harness import Stack, free_port  # noqa: E402
from support.dovecot import EICAR, DovecotInstance, available  # noqa: E402

USER, PASSWORD = "bench@example.org", "bench"
SECTION = "## POP3/IMAP proxies"


def corpus(count: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    words = [b"mail", b"proxy", b"scanner", b"download", b"report", b"invoice", b"meeting"]
    out = []
    for i in range(count):
        text = b" ".join(rng.choice(words) for _ in range(rng.randint(300, 6000)))
        lines = b"\n".join(text[j : j + 72] for j in range(0, len(text), 72))
        attachment = base64.encodebytes(rng.randbytes(rng.randint(0, 20000)))
        if i % 100 == 50:
            attachment = base64.encodebytes(EICAR)
        out.append(
            b"From: Sender <s%d@example.net>\nTo: %s\nSubject: message %d\n"
            b"Date: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <bench-%d@example.net>\n"
            b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n'
            b"--b\nContent-Type: text/plain\n\n%s\n--b\nContent-Type: application/octet-stream\n"
            b"Content-Transfer-Encoding: base64\n\n%s--b--\n"
            % (i, USER.encode(), i, i, lines, attachment)
        )
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Pop3Path:
    def __init__(self, port: int) -> None:
        self.box = poplib.POP3("127.0.0.1", port, timeout=60)
        self.box.user(USER)
        self.box.pass_(PASSWORD)

    def fetch(self, n: int) -> bytes:
        _, lines, _ = self.box.retr(n)
        return b"\r\n".join(lines) + b"\r\n"

    def close(self) -> None:
        self.box.quit()


class ImapPath:
    def __init__(self, port: int) -> None:
        self.box = imaplib.IMAP4("127.0.0.1", port, timeout=60)
        self.box.login(USER, PASSWORD)
        self.box.select("INBOX", readonly=True)

    def fetch(self, uid: int) -> bytes:
        _, got = self.box.uid("FETCH", str(uid), "(BODY.PEEK[])")
        first = got[0]
        return first[1] if isinstance(first, tuple) else b""

    def close(self) -> None:
        self.box.logout()


def timed(path: Pop3Path | ImapPath, n: int) -> tuple[float, bytes]:
    start = time.perf_counter()
    data = path.fetch(n)
    return time.perf_counter() - start, data


def scan_times(log: Path, agent: str) -> list[float]:
    """The daemon's part of each fetch, from the proxy's own JSON log lines, in order."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and f'"agent": "{agent}"' in line:
            out.append(float(json.loads(line)["timings"]["scan"]))
    return out


def summary(name: str, times: list[float], data: list[bytes]) -> dict[str, Any]:
    total = sum(times)
    return {
        "path": name,
        "messages": len(times),
        "msgs_per_s": round(len(times) / total, 1),
        "mb_per_s": round(sum(map(len, data)) / total / 1e6, 2),
        "p50_ms": round(pct(times, 0.5) * 1000, 2),
        "p99_ms": round(pct(times, 0.99) * 1000, 2),
    }


def run(count: int) -> list[dict[str, Any]]:
    why = available()
    if why:
        raise SystemExit(f"bench/download.py: {why}")
    root = Path(tempfile.mkdtemp(prefix="mwbench-dl-"))
    root.chmod(0o755)
    try:
        dovecot = DovecotInstance.create(root / "dovecot", users={USER: PASSWORD})
        messages = corpus(count)
        for i, raw in enumerate(messages):
            dovecot.deliver(USER, raw, name=f"{1000 + i}.M{i}.bench")
        ports = {"pop3": free_port(), "imap": free_port()}
        stack = Stack.create(
            root / "mw",
            workers=2,
            extra_toml=f'[pop3_proxy]\nserver = "127.0.0.1:{dovecot.ports["pop3"]}"\n'
            f'[imap_proxy]\nserver = "127.0.0.1:{dovecot.ports["imap"]}"\n',
        )
        try:
            dovecot.start()
            stack.start_daemon()
            for kind, port in ports.items():
                stack.start_agent(kind, f"{kind}-proxy", port)
            results = []
            clean = [i for i in range(count) if i % 100 != 50]
            for kind, path in (("pop3", Pop3Path), ("imap", ImapPath)):
                direct, proxied = path(dovecot.ports[kind]), path(ports[kind])
                for n in range(1, count + 1):  # warm Dovecot's indexes and caches
                    direct.fetch(n)
                direct_t, direct_d, proxy_t, proxy_d = [], [], [], []
                for n in range(1, count + 1):  # interleaved: the same machine load for both
                    took, data = timed(direct, n)
                    direct_t.append(took)
                    direct_d.append(data)
                    took, data = timed(proxied, n)
                    proxy_t.append(took)
                    proxy_d.append(data)
                direct.close()
                proxied.close()
                scans = scan_times(stack.procs[kind].log, f"{kind}-proxy")
                if len(scans) != count:
                    raise SystemExit(f"{kind}: {len(scans)} scan records for {count} fetches")
                identical = all(direct_d[i] == proxy_d[i] for i in clean)
                overhead = [proxy_t[i] - direct_t[i] - scans[i] for i in clean]
                results.append(summary(f"{kind} direct", direct_t, direct_d))
                row = summary(f"{kind} proxy", proxy_t, proxy_d)
                row.update(
                    overhead_p50_ms=round(pct(overhead, 0.5) * 1000, 2),
                    overhead_p99_ms=round(pct(overhead, 0.99) * 1000, 2),
                    scan_p50_ms=round(pct(scans, 0.5) * 1000, 2),
                    clean_identical=identical,
                    infected_replaced=all(
                        EICAR not in proxy_d[i] for i in range(count) if i % 100 == 50
                    ),
                )
                results.append(row)
            return results
        finally:
            stack.stop_all()
            dovecot.stop()
    finally:
        if not os.environ.get("MAILWARDEN_KEEP_TEST_ROOT"):
            shutil.rmtree(root, ignore_errors=True)


def markdown(results: list[dict[str, Any]], count: int) -> str:
    cores = os.cpu_count()
    lines = [
        SECTION,
        "",
        f"`bench/download.py --messages {count}`: {count} messages (2-60 KB, 1% EICAR) fetched one "
        "by one in one session per path, straight from Dovecot (Debian 2.3) and through "
        "`mailwarden pop3-proxy` / `imap-proxy` (daemon with 2 workers, bundled signatures, "
        f"default policy), plain text on loopback; {cores} cores, {platform.python_version()}, "
        "shared machine. Overhead = proxied - direct - the daemon's scan of that fetch, "
        "per clean message; direct and proxied fetches interleaved.",
        "",
        "| path | msgs/s | MB/s | p50 ms | p99 ms | overhead p50 ms | overhead p99 ms "
        "| scan p50 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['path']} | {r['msgs_per_s']} | {r['mb_per_s']} | {r['p50_ms']} | {r['p99_ms']} "
            f"| {r.get('overhead_p50_ms', '')} | {r.get('overhead_p99_ms', '')} "
            f"| {r.get('scan_p50_ms', '')} |"
        )
    checks = [r for r in results if "clean_identical" in r]
    lines += [
        "",
        "Clean messages byte-identical through both proxies: "
        f"{all(r['clean_identical'] for r in checks)}; infected ones replaced: "
        f"{all(r['infected_replaced'] for r in checks)}.",
        "",
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    path = REPO / "BENCHMARKS.md"
    current = path.read_text()
    start = current.find(SECTION)
    if start < 0:
        path.write_text(current.rstrip("\n") + "\n\n" + text)
        return
    end = current.find("\n## ", start + len(SECTION))
    path.write_text(current[:start] + text + (current[end + 1 :] if end >= 0 else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--write", action="store_true", help="replace the section in BENCHMARKS.md")
    args = parser.parse_args()
    results = run(args.messages)
    for row in results:
        print(json.dumps(row))
    text = markdown(results, args.messages)
    print(text)
    if args.write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
