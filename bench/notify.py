"""Notification benchmark: the SMTP reply of ``mailwarden smtp-filter`` for infected mail,
with notifications on and off, in one run.

Usage (from the repository root)::

    .venv/bin/python bench/notify.py                  # 500 messages per path
    .venv/bin/python bench/notify.py --write          # and update BENCHMARKS.md

One ``mailwarden daemon`` (bundled signatures) serves two ``smtp-filter``
processes that differ only in ``[notify] enabled``; the one with
notifications sends them (administrator and recipient, no rate limit) to a
recording SMTP sink that is also both filters' downstream.  Every message
carries EICAR, so the policy quarantines it after the queue and, on the
notifying path, two notices are queued.  Messages go to the two filters in
turn, one at a time, each timed from the end of DATA to the reply.
Reported per path: p50/p99 of that reply time and its difference, and how
many notices reached the sink (all of them must).

SECURITY: everything listens on 127.0.0.1 or lives in a private temporary
folder and is stopped by PID; the only "virus" is the EICAR test string.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import smtplib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from intercept.harness import EICAR, Stack, free_port, port_open, wait_until  # noqa: E402
from intercept.mail import make_message  # noqa: E402
from support.smtp_sink import smtp_sink  # noqa: E402

SECTION = "## Notifications: smtp-filter's reply with and without notifications"


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(messages: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="mwbn-"))
    load_before = os.getloadavg()[0]
    with smtp_sink() as (sink, sink_port):
        on_extra = f"""
[network]
local_domains = ["example.org"]

[notify]
smtp = "127.0.0.1:{sink_port}"
rate_limit = 0
max_pending = 100000
"""
        stack = Stack.create(root, extra_toml=on_extra)
        off_config = root / "off.toml"
        off_config.write_text(
            stack.config.read_text().replace("rate_limit = 0", "rate_limit = 0\nenabled = false")
        )
        ports = {"on": free_port(), "off": free_port()}
        try:
            stack.start_daemon()
            stack.start_agent(
                "filter-on", "smtp-filter", ports["on"], "--downstream", f"127.0.0.1:{sink_port}"
            )
            stack._spawn(
                "filter-off",
                ["smtp-filter", "-c", str(off_config), "--listen", f"127.0.0.1:{ports['off']}",
                 "--daemon-socket", stack.socket, "--downstream", f"127.0.0.1:{sink_port}"],
            )  # fmt: skip
            wait_until(lambda: port_open(ports["off"]), 30, "filter-off")
            raw, _ = make_message(
                sender="eve@remote.example", to="bob@example.org", attachment=EICAR
            )
            times: dict[str, list[float]] = {"on": [], "off": []}
            clients = {
                name: smtplib.SMTP("127.0.0.1", port, timeout=60) for name, port in ports.items()
            }
            for client in clients.values():
                client.ehlo("bench.example")
            for _ in range(messages):
                for name, client in clients.items():
                    client.mail("eve@remote.example")
                    client.rcpt("bob@example.org")
                    code, _ = client.docmd("DATA")
                    assert code == 354
                    client.send(raw.replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\n")
                    started = time.perf_counter()
                    code, text = client.getreply()
                    times[name].append(time.perf_counter() - started)
                    assert code == 250, text
            for client in clients.values():
                client.quit()
            wait_until(lambda: len(sink.messages) >= 2 * messages, 120, "every notice")
            notices = len(sink.messages)
        finally:
            stack.stop_all()
            shutil.rmtree(root, ignore_errors=True)
    result: dict[str, Any] = {"messages": messages, "notices": notices}
    for name, values in times.items():
        result[name] = {
            "p50_ms": round(statistics.median(values) * 1000, 2),
            "p99_ms": round(_quantile(values, 0.99) * 1000, 2),
        }
    result["load_before"] = round(load_before, 2)
    result["load_after"] = round(os.getloadavg()[0], 2)
    return result


def markdown(r: dict[str, Any]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    on, off = r["on"], r["off"]
    return "\n".join(
        [
            SECTION,
            "",
            f"`.venv/bin/python bench/notify.py --messages {r['messages']}`: {r['messages']} "
            "EICAR messages per path through `mailwarden smtp-filter` (after-queue, quarantined), "
            "one at a time, the two filters in turn; time from the end of DATA to the reply. "
            f"{os.cpu_count()} cores, Python {platform.python_version()}. Measured {when}, "
            f"load average {r['load_before']} before, {r['load_after']} after.",
            "",
            "| notifications | p50 ms | p99 ms |",
            "| --- | --- | --- |",
            f"| off | {off['p50_ms']} | {off['p99_ms']} |",
            f"| on (2 per message) | {on['p50_ms']} | {on['p99_ms']} |",
            f"| difference | {round(on['p50_ms'] - off['p50_ms'], 2)} | "
            f"{round(on['p99_ms'] - off['p99_ms'], 2)} |",
            "",
            f"Notices received by the SMTP server: {r['notices']} of {2 * r['messages']}.",
            "",
        ]
    )


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
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--write", action="store_true", help="replace the section in BENCHMARKS.md")
    args = parser.parse_args()
    result = run(args.messages)
    print(json.dumps(result))
    text = markdown(result)
    print(text)
    if args.write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
