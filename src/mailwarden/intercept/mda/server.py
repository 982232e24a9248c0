"""The resident mda agent (``mailwarden mda-agent``): the pipeline for every ``mda`` and ``pipe``.

::

    agent = await start_agent(settings, config)    # listening on [mda] agent_socket
    await agent.stop()

    run_agent(settings, config)                    # the process: until SIGTERM

``mailwarden mda`` and ``mailwarden pipe`` are started once per message;
importing the pipeline costs more than the rest of a delivery.  So they send
the message here (``mailwarden.cli.mda_client`` has the wire format): a
descriptor of a file holding their standard input plus the envelope, on a
unix socket.  The agent, which loaded everything once, reads the message,
runs the same sequence as the in-process path (:func:`.judge.decide` with one
daemon client and one pipeline for all requests), and answers with the exit
status, the line for standard error and, when the policy delivers, a
descriptor of the copy (the mbox ``From `` line back in front).  The exit
statuses are those of ``[mda]`` in the agent's own configuration.

At most ``[mda] agent_max_requests`` messages are read and judged at once;
further requests wait for a turn (the client's ``agent_timeout`` bounds the
wait), and a message larger than the daemon scans (``[daemon]
stream_max_length``) is not read but deferred, so memory is bounded by that
number times that size.
A client has ``REQUEST_TIMEOUT`` seconds to send its request.

SECURITY: whoever can connect may have a message scanned and, by the policy,
quarantined or recorded in the history under an envelope of their choosing,
as the agent's user: the socket is created 0660 (``agent_socket_mode``) with
the group ``agent_socket_group`` (the delivering users' group) and no window
in which others could connect; a live agent's socket is never taken over
and nothing but a stale socket is removed from its path
(``mailwarden.unixsocket``).  A received descriptor must be a regular file
(a pipe or socket could stall a worker); it is only read, never written.
The copy goes back in a new anonymous file.  The request is bounded
(``MAX_FRAME``) and every failure is answered with ``[mda] exit_tempfail``,
so the client's MTA keeps the mail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
import struct

from mailwarden.cli.mda_client import RECV_ARGS, Receiver, WireError, reply_fields, send_frame
from mailwarden.config import Config
from mailwarden.daemon.client import AsyncDaemonClient
from mailwarden.intercept.mda.agent import refusal
from mailwarden.intercept.mda.handoff import stage_copy
from mailwarden.intercept.mda.intake import Intake, IntakeError, read_message
from mailwarden.intercept.mda.judge import decide, header_host
from mailwarden.intercept.mda.report import reason_line
from mailwarden.intercept.mda.settings import AgentSettings
from mailwarden.intercept.pipeline import Pipeline, Scanner
from mailwarden.intercept.runner import run
from mailwarden.message import Envelope, Message, Point
from mailwarden.policy import DELIVERING
from mailwarden.unixsocket import bind_unix

log = logging.getLogger("mailwarden.intercept.mda")

#: seconds a client has to send its request once connected
REQUEST_TIMEOUT = 30.0
_VERBS = ("mda", "pipe")


class MdaAgent:
    """See the module documentation."""

    def __init__(self, settings: AgentSettings, pipeline: Pipeline) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self._sock: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._requests: set[asyncio.Task[None]] = set()
        self._turns = asyncio.Semaphore(settings.max_requests)
        #: the files the configuration came from, read again on SIGHUP
        self.config_files: list[str] = []

    @property
    def address(self) -> str:
        return self.settings.socket

    async def start(self) -> None:
        self._sock = _bind(self.settings)
        self._sock.setblocking(False)
        self._accepting = asyncio.create_task(self._accept(self._sock))

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(listener)
            except OSError as exc:  # EMFILE and the like: wait, do not spin
                log.error("accept failed: %s", exc)
                await asyncio.sleep(0.5)
                continue
            task = asyncio.create_task(self._serve(conn))
            self._requests.add(task)
            task.add_done_callback(self._requests.discard)

    async def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.setblocking(False)
            receiver = Receiver()
            try:
                fields = await asyncio.wait_for(_receive(conn, receiver), REQUEST_TIMEOUT)
            except (TimeoutError, OSError, WireError) as exc:
                log.warning("bad request from %s: %s", _peer(conn), exc or type(exc).__name__)
                receiver.close()
                return
            message = receiver.take()
            copy = None
            try:
                # the request is small; the message is read only when its turn comes
                async with self._turns:
                    answer, copy = await self._answer(fields, message)
                await _send(conn, answer, copy)
            except OSError as exc:
                log.warning("cannot answer %s: %s", _peer(conn), exc)
            finally:
                if message is not None:
                    os.close(message)
                if copy is not None:
                    os.close(copy)

    async def _answer(self, fields: list[bytes], fd: int | None) -> tuple[list[bytes], int | None]:
        """The reply to one request, and the descriptor of the copy to deliver."""
        codes = self.settings.mda.codes
        verb = os.fsdecode(fields[0]) if fields else ""
        name = f"mailwarden {verb if verb in _VERBS else 'mda'}"

        def fail(status: str, text: str) -> tuple[list[bytes], None]:
            line = reason_line(codes.tempfail, status, text, temporary=codes.tempfail)
            return reply_fields(codes.tempfail, False, codes.tempfail, line), None

        if verb not in _VERBS or len(fields) < 2:
            return fail("4.3.0", f"{name}: malformed request to the mda agent")
        info = os.fstat(fd) if fd is not None else None
        if fd is None or info is None or not stat.S_ISREG(info.st_mode):
            return fail("4.3.0", f"{name}: the message did not come as a file")
        if info.st_size > self.settings.max_message:
            # the daemon would answer "size limit exceeded" (an 'error' verdict); not
            # reading it keeps the agent's memory bounded
            return fail(
                "4.3.4",
                f"{name}: message of {info.st_size} bytes is larger than the scanner "
                "takes ([daemon] stream_max_length)",
            )
        try:
            intake = await asyncio.to_thread(_read, fd, self.settings.mda.spool_threshold)
            envelope = Envelope(
                sender=os.fsdecode(fields[1]),
                recipients=tuple(os.fsdecode(r) for r in fields[2:]),
                point=Point.MDA,
                agent=verb,
            )
            decision = await decide(self.pipeline, Message(intake.raw, envelope))
            if decision.kind in DELIVERING and decision.data is not None:
                copy = stage_copy(
                    (intake.from_line, decision.data), self.settings.mda.spool_threshold
                )
                # an MDA that cannot be run is a usage problem; stdout that fails, a retry
                fallback = codes.usage if verb == "mda" else codes.tempfail
                return reply_fields(0, True, fallback, ""), copy
            if verb == "mda":
                code, line = refusal(
                    decision, codes, quarantine=codes.quarantine, discard=codes.discard
                )
            else:
                code, line = refusal(
                    decision, codes, quarantine=codes.pipe_quarantine, discard=codes.pipe_discard
                )
            return reply_fields(code, False, codes.tempfail, line), None
        except IntakeError as exc:
            return fail("4.3.0", f"{name}: {exc}")
        except Exception as exc:  # the boundary: whatever went wrong, the MTA keeps the mail
            log.exception("internal error, the MTA keeps the mail")
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            return fail("4.3.0", f"{name}: internal error: {reason}")

    def reload(self) -> None:
        """SIGHUP: take the policy from the configuration files again."""
        self.pipeline.reload_from(self.config_files)

    async def stop(self, grace: float = 30.0) -> None:
        """Stop listening, let requests in progress finish for ``grace`` seconds."""
        if self._accepting is not None:
            self._accepting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accepting
        if self._sock is not None:
            self._sock.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.settings.socket)
        if self._requests:
            _, pending = await asyncio.wait(set(self._requests), timeout=grace)
            for task in pending:
                task.cancel()
        scanner = self.pipeline.scanner
        if isinstance(scanner, AsyncDaemonClient):
            await scanner.close()


def _read(fd: int, threshold: int) -> Intake:
    with os.fdopen(os.dup(fd), "rb") as stream:
        stream.seek(0)
        return read_message(stream, threshold=threshold)


async def _readable(conn: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(conn.fileno(), wake)
    try:
        await ready
    finally:
        loop.remove_reader(conn.fileno())


async def _receive(conn: socket.socket, receiver: Receiver) -> list[bytes]:
    while True:
        await _readable(conn)
        try:
            data, ancillary, _, _ = conn.recvmsg(*RECV_ARGS)
        except (BlockingIOError, InterruptedError):
            continue
        fields = receiver.feed(data, ancillary)
        if fields is not None:
            return fields


async def _send(conn: socket.socket, fields: list[bytes], fd: int | None) -> None:
    # a reply is a few hundred bytes on a fresh connection: the socket buffer takes it
    # at once, so the blocking helper never waits long
    conn.setblocking(True)
    conn.settimeout(REQUEST_TIMEOUT)
    await asyncio.to_thread(send_frame, conn, fields, fd)


def _peer(conn: socket.socket) -> str:
    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return "a client"
    pid, uid, _ = struct.unpack("3i", creds)
    return f"pid {pid} uid {uid}"


def _bind(settings: AgentSettings) -> socket.socket:
    return bind_unix(
        settings.socket,
        mode=settings.socket_mode,
        group=settings.socket_group,
        group_key="agent_socket_group",
        owner_name="mda agent",
    )


async def start_agent(
    settings: AgentSettings, config: Config, *, scanner: Scanner | None = None
) -> MdaAgent:
    """Build the agent from its settings and start listening."""
    reach = settings.mda
    scanner = scanner or AsyncDaemonClient(
        reach.daemon_socket, timeout=reach.scan_timeout, connect_timeout=reach.connect_timeout
    )
    agent = MdaAgent(settings, Pipeline.from_config(config, scanner, host=header_host(config)))
    agent.config_files = list(config.files)
    await agent.start()
    return agent


def run_agent(settings: AgentSettings, config: Config) -> int:
    """The ``mailwarden mda-agent`` process: serve until SIGTERM."""
    return run(
        lambda: start_agent(settings, config),
        name="mda-agent",
        where=settings.socket,
        config=config,
        own=(settings.socket,),
    )
