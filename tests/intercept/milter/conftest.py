"""Fixtures of the milter tests.

``run_milter(scenario, tmp_path, toml="", **settings)`` starts ``MilterServer``
in this process on a unix socket in ``tmp_path``, with a scanner that finds
EICAR in the raw bytes (the protocol tests are about the milter, not the
engine; the end-to-end tests use the real daemon), runs
``scenario(address, server)`` and stops the server.

SECURITY: test-only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from intercept.harness import EICAR, Proc, Stack, wait_until
from mailwarden.config import load_config
from mailwarden.daemon import DaemonUnavailable
from mailwarden.intercept.milter import MilterServer, MilterSettings
from mailwarden.intercept.milter.settings import Listen
from mailwarden.intercept.pipeline import Pipeline
from mailwarden.message import Envelope
from mailwarden.verdict import Finding, Status, Verdict

Scenario = Callable[[str, MilterServer], Awaitable[Any]]


class EicarScanner:
    """Infected when the bytes hold EICAR; ``down`` makes it fail as a stopped daemon."""

    def __init__(self) -> None:
        self.down = False
        self.seen: list[tuple[bytes, Envelope | None]] = []
        self.gate: asyncio.Event | None = None

    async def scan_bytes(
        self, data: bytes | memoryview, envelope: Envelope | None = None
    ) -> Verdict:
        self.seen.append((bytes(data), envelope))
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise DaemonUnavailable("cannot connect to the daemon")
        if EICAR in bytes(data):
            return Verdict(
                Status.INFECTED, (Finding("Eicar-Test-Signature", "1/eicar.com", "clamav"),)
            )
        return Verdict(Status.CLEAN)


def settings(path: Path, **overrides: Any) -> MilterSettings:
    values: dict[str, Any] = {
        "listen": Listen("unix", path=str(path)),
        "socket_mode": 0o600,
        "daemon_socket": "/nonexistent",
        "max_message_size": 20 * 1024 * 1024,
        "spool_threshold": 64 * 1024,
        "max_sessions": 50,
        "timeout": 30.0,
        "scan_timeout": 30.0,
        "progress_interval": 30.0,
        "submission_daemons": ("MSA",),
        "mta_hold": False,
    }
    values.update(overrides)
    return MilterSettings(**values)


def config_file(tmp_path: Path, toml: str) -> Path:
    path = tmp_path / "mailwarden.toml"
    path.write_text(
        f"""\
[store]
database = "{tmp_path / "store.sqlite3"}"
spool_dir = "{tmp_path / "quarantine"}"

[network]
local_domains = ["test.example"]
trusted_networks = ["10.0.0.0/8"]

[headers]
hostname = "gw.test.example"
"""
        + toml
    )
    return path


def run_milter(
    scenario: Scenario,
    tmp_path: Path,
    *,
    toml: str = "",
    scanner: EicarScanner | None = None,
    **overrides: Any,
) -> Any:
    config = load_config(config_file(tmp_path, toml))
    scanner = scanner or EicarScanner()
    sock = tmp_path / "milter.sock"

    async def main() -> Any:
        pipeline = Pipeline.from_config(config, scanner, host="gw.test.example")
        server = MilterServer(settings(sock, **overrides), pipeline, host="gw.test.example")
        await server.start()
        try:
            return await scenario(f"unix:{sock}", server)
        finally:
            await server.stop(grace=5)

    return asyncio.run(main())


# --- end to end: the real daemon and `mailwarden milter` as processes ---------------

E2E_POLICY = """
[network]
local_domains = ["test.example"]

[headers]
hostname = "gw.test.example"

[milter]
socket_mode = "0666"
"""


def start_milter_process(stack: Stack, socket: str, name: str = "milter") -> Proc:
    """``mailwarden milter --socket SOCKET`` against the stack's daemon; ready when it accepts."""
    proc = stack._spawn(  # the harness's own spawner: same log files, stopped by stop_all
        name,
        ["milter", "-c", str(stack.config), "--socket", socket, "--daemon-socket", stack.socket],
    )

    def up() -> bool:
        if proc.popen.poll() is not None:
            raise AssertionError(f"{name} exited: {proc.output()}")
        return _accepts(socket)

    wait_until(up, 30, name)
    return proc


def _accepts(socket_spec: str) -> bool:
    import socket as sockets

    kind, _, rest = socket_spec.partition(":")
    family = sockets.AF_UNIX if kind == "unix" else sockets.AF_INET
    with sockets.socket(family) as probe:
        probe.settimeout(0.5)
        if kind == "unix":
            return probe.connect_ex(rest) == 0
        port, _, host = rest.partition("@")
        return probe.connect_ex((host, int(port))) == 0


def smtp_outcome(port: int, sender: str, recipients: list[str], data: bytes) -> tuple[int, str]:
    """The first refusal of the transaction (at any command) or the reply to DATA."""
    import smtplib

    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=120) as c:
        c.ehlo()
        code, text = c.mail(sender)
        if code != 250:
            return code, text.decode(errors="replace")
        for rcpt in recipients:
            code, text = c.rcpt(rcpt)
            if code >= 400:
                return code, text.decode(errors="replace")
        code, text = c.data(data)
        return code, text.decode(errors="replace")
