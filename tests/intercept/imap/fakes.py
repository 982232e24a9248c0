"""In-process pieces for both download proxies' bad-input tests (the POP3 tests import them
too): a scripted server, a scanner that knows EICAR, and a proxy started on them.

::

    async with scripted_server(answer) as port:          # answer(line) -> bytes | None
        server = await start_proxy(tmp_path, IMAP, port, max_message_size=2048)

``answer`` gets each line the proxy sends and returns what the server writes
back (None: close the connection; ending in :data:`CLOSE`: send, then close).
Literals the proxy sends arrive as lines too.

SECURITY: test-only; listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from mailwarden.config import load_config
from mailwarden.intercept.download import ProxyServer, ProxySettings
from mailwarden.intercept.download.serve import ProxyProtocol, start_download_proxy
from mailwarden.message import Envelope
from mailwarden.verdict import Finding, Status, Verdict

#: ends a scripted reply after which the server closes the connection
CLOSE = b"<close>"
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


class EicarScanner:
    """Infected when the bytes hold EICAR, clean otherwise; counts what it saw."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []

    async def scan_bytes(
        self, data: bytes | memoryview, envelope: Envelope | None = None
    ) -> Verdict:
        raw = bytes(data)
        self.seen.append(raw)
        if EICAR in raw:
            return Verdict(Status.INFECTED, (Finding("Eicar-Test-Signature", "", "test"),))
        return Verdict(Status.CLEAN)


@contextlib.asynccontextmanager
async def scripted_server(
    greeting: bytes, answer: Callable[[bytes], bytes | None]
) -> AsyncIterator[int]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(greeting)
        while line := await reader.readline():
            reply = answer(line)
            if reply is None:
                break
            writer.write(reply.removesuffix(CLOSE))
            await writer.drain()
            if reply.endswith(CLOSE):
                break
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()


async def start_proxy(
    root: Path,
    protocol: ProxyProtocol,
    server_port: int,
    scanner: EicarScanner,
    *,
    extra: str = "",
) -> ProxyServer:
    kind = protocol.agent.split("-")[0]
    config_file = root / "mailwarden.toml"
    config_file.write_text(
        f"""
[store]
database = "{root / "store.sqlite3"}"
spool_dir = "{root / "quarantine"}"

[release]
secret_file = "{root / "release.key"}"

[{kind}_proxy]
server = "127.0.0.1:{server_port}"
{extra}
"""
    )
    config = load_config(str(config_file))
    settings = ProxySettings.from_config(
        config, f"{kind}_proxy", listen="127.0.0.1:0", daemon_socket="unused"
    )
    return await start_download_proxy(settings, config, protocol, scanner=scanner)


async def talk(port: int, data: bytes, *, until: bytes, limit: int = 1 << 20) -> bytes:
    """Send ``data`` and read until ``until`` appears or the proxy closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    got = b""
    with contextlib.suppress(ConnectionError):
        while until not in got and len(got) < limit:
            chunk = await asyncio.wait_for(reader.read(65536), 20)
            if not chunk:
                break
            got += chunk
    writer.close()
    return got
