"""A real gateway for the end-to-end web and metrics tests: the daemon, the SMTP
filter in front of an SMTP sink, a SQLite store and a metrics folder, as the
command line runs them.

Usage::

    with gateway(tmp_path) as gw:
        gw.send(clean_message()); gw.send(eicar_message())
        gw.sink.messages                 # what was delivered (and released)
        gw.start_web(port)               # `mailwarden web` on that port

SECURITY: test-only; everything listens on 127.0.0.1 or under ``root``.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from intercept.harness import EICAR, Stack, free_port, port_open, wait_until
from support.smtp_sink import Sink, smtp_sink
from web.conftest import FAST_HASH


@dataclass
class Gateway:
    stack: Stack
    sink: Sink
    filter_port: int
    metrics_dir: Path

    def send(self, raw: bytes, recipients: tuple[str, ...] = ("bob@example.org",)) -> None:
        with smtplib.SMTP("127.0.0.1", self.filter_port, timeout=60) as smtp:
            smtp.sendmail("alice@remote.example", list(recipients), raw)

    def start_web(self, port: int) -> None:
        proc = self.stack._spawn(
            "web", ["web", "-c", str(self.stack.config), "--listen", f"127.0.0.1:{port}"]
        )

        def up() -> bool:
            if proc.popen.poll() is not None:
                raise AssertionError(f"web exited: {proc.output()}")
            return port_open(port)

        wait_until(up, 30, "mailwarden web")


def message(subject: str, body: str, attachment: bytes | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = "alice@remote.example"
    msg["To"] = "bob@example.org"
    msg["Subject"] = subject
    msg.set_content(body)
    if attachment is not None:
        msg.add_attachment(
            attachment, maintype="application", subtype="octet-stream", filename="eicar.com"
        )
    return msg.as_bytes()


def eicar_message(subject: str = "the test virus") -> bytes:
    return message(subject, "see the attachment", EICAR)


@contextmanager
def gateway(root: Path) -> Iterator[Gateway]:
    with smtp_sink() as (sink, sink_port):
        metrics_dir = root / "metrics"
        stack = Stack.create(
            root,
            extra_toml=f"""
[policy]
infected = "quarantine"

[metrics]
directory = "{metrics_dir}"

[web]
password_hash = "{FAST_HASH}"
secret_file = "{root / "web.key"}"

[smtp_filter]
downstream = "127.0.0.1:{sink_port}"
""",
        )
        stack.config.write_text(
            stack.config.read_text().replace("[release]\n", f"[release]\nport = {sink_port}\n", 1)
        )
        try:
            stack.start_daemon()
            port = free_port()
            stack.start_agent(
                "filter", "smtp-filter", port, "--downstream", f"127.0.0.1:{sink_port}"
            )
            yield Gateway(stack, sink, port, metrics_dir)
        finally:
            stack.stop_all()
