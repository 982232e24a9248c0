"""One client's conversation: clamd commands, IDSESSION, and the native MAILSCAN.

The server hands every accepted connection to :func:`serve_connection`::

    await serve_connection(Connection(sock, unix=True), context)

Commands and replies follow clamd(8) byte for byte (see ``protocol.py``).
MAILSCAN is mailwarden's own: ``zMAILSCAN <envelope JSON>\\0`` followed by the
message as INSTREAM chunks; the reply is one line of JSON, the whole
:class:`~mailwarden.verdict.Verdict` (findings with part paths, the reason a
message is unscanned, timings) plus the database that judged it.

Every request that needs a worker first takes a ticket from the pool; without
one the client is told at once that the queue is full.  Stream data is read
into a :class:`~mailwarden.daemon.spool.Spool`, within ``stream_max_length``
and ``read_timeout``.  Inside IDSESSION the data of each request is read in
order, its scan runs in the background, and replies carry the request's id,
possibly out of order, as clamd's do.

SECURITY: all input is hostile.  Path commands (SCAN, CONTSCAN, MULTISCAN,
ALLMATCHSCAN) make the daemon open files with its own rights, like clamd;
they can be switched off (``path_scans = false``).  Symbolic links inside a
named folder are not followed.  Names echoed in replies are cleaned of
control characters so a client cannot forge reply lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import stat
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

from mailwarden.daemon import protocol as p
from mailwarden.daemon.connection import ClientGone, Connection
from mailwarden.daemon.pool import Job, Ticket, WorkerPool
from mailwarden.daemon.settings import DaemonSettings
from mailwarden.daemon.spool import Spool
from mailwarden.daemon.stats import Counters
from mailwarden.message import Envelope
from mailwarden.verdict import Status, Verdict

log = logging.getLogger("mailwarden.daemon")

#: a connection ended early after an error reply: let the client read it
_LINGER = 1.0
_WALK_BATCH = 256


@dataclass
class Context:
    """What every connection shares; built by the server."""

    settings: DaemonSettings
    pool: WorkerPool
    counters: Counters
    version_text: Callable[[], str]
    stats_text: Callable[[], str]
    database: Callable[[], dict[str, Any]]
    request_reload: Callable[[], None]
    request_shutdown: Callable[[], None]


class _Close(Exception):
    """End the connection (after an error reply already sent)."""


async def serve_connection(conn: Connection, ctx: Context) -> None:
    handler = _Handler(conn, ctx)
    linger = 0.0
    try:
        await handler.first_command()
    except _Close:
        linger = _LINGER
    except ClientGone:
        pass
    finally:
        await conn.close(linger=linger)


class _Handler:
    def __init__(self, conn: Connection, ctx: Context) -> None:
        self.conn = conn
        self.ctx = ctx
        self.settings = ctx.settings

    # --- reading commands ---------------------------------------------------------

    async def _next(self, timeout: float | None) -> p.Command | p.RawCommand | None:
        """A parsed command, the raw one when unknown, None at EOF."""
        try:
            raw = await self.conn.read_command(timeout)
        except p.CommandTooLong as exc:
            await self.conn.send(p.reply(exc.style.term, p.UNKNOWN_COMMAND))
            raise _Close from exc
        if raw is None:
            return None
        return p.parse_command(raw) or raw

    async def _timed_out(self) -> None:
        # clamd ends this reply with a newline whatever the command style
        await self.conn.send(p.COMMAND_READ_TIMED_OUT.encode() + b"\n")
        raise _Close

    async def first_command(self) -> None:
        try:
            cmd = await self._next(self.settings.command_timeout)
        except TimeoutError:
            await self._timed_out()
            return
        if cmd is None:
            return
        if isinstance(cmd, p.RawCommand):
            await self.conn.send(p.reply(cmd.style.term, p.UNKNOWN_COMMAND))
            return
        if cmd.name == "IDSESSION":
            await self._session()
            return
        later = await self._command(cmd, 0)
        if later is not None:
            await later

    async def _session(self) -> None:
        tasks: set[asyncio.Task[None]] = set()
        ids = itertools.count(1)
        try:
            while True:
                try:
                    cmd = await self._next(self.settings.idle_timeout)
                except TimeoutError:
                    if tasks:
                        continue  # still scanning for this client: not idle
                    await self._timed_out()
                    return
                if cmd is None:
                    return
                sid = next(ids)
                if isinstance(cmd, p.RawCommand) or not cmd.allowed_in_session:
                    term = cmd.style.term
                    await self.conn.send(p.reply(term, p.INVALID_IN_SESSION, session_id=sid))
                    raise _Close
                if cmd.name == "END":
                    return
                later = await self._command(cmd, sid)
                if later is not None:
                    task = asyncio.create_task(later)
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
        finally:
            # replies still owed are sent before the connection closes (clamdscan
            # sends END first and then reads them); a vanished client only
            # makes the sends fail quietly
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    # --- commands -------------------------------------------------------------------

    async def _command(self, cmd: p.Command, sid: int) -> Coroutine[Any, Any, None] | None:
        """Run ``cmd``; for scans, read their input now and return the rest to await."""
        term = cmd.term
        name = cmd.name
        if name == "PING":
            await self.conn.send(p.reply(term, p.PONG, session_id=sid))
        elif name == "VERSION":
            await self.conn.send(p.reply(term, self.ctx.version_text(), session_id=sid))
        elif name == "VERSIONCOMMANDS":
            text = f"{self.ctx.version_text()}| COMMANDS: {' '.join(p.COMMANDS)}"
            await self.conn.send(p.reply(term, text, session_id=sid))
        elif name == "STATS":
            await self.conn.send(p.reply(term, self.ctx.stats_text(), session_id=sid))
        elif name == "RELOAD":
            await self.conn.send(p.reply(term, p.RELOADING))
            self.ctx.request_reload()
        elif name in ("SHUTDOWN", "QUIT"):
            self.ctx.request_shutdown()
        elif name in ("DETSTATS", "DETSTATSCLEAR"):
            pass  # clamd dropped these statistics; it closes without a reply
        elif name == "END":
            await self.conn.send(p.reply(term, p.UNKNOWN_COMMAND))
        elif name == "INSTREAM":
            return await self._instream(cmd, sid)
        elif name == "MAILSCAN":
            return await self._mailscan(cmd, sid)
        elif name == "FILDES":
            return await self._fildes(cmd, sid)
        else:
            return await self._path_scan(cmd, sid)
        return None

    def _admit(self) -> Ticket | None:
        return self.ctx.pool.admit()

    async def _refuse_busy(self, cmd: p.Command, sid: int, label: str) -> None:
        await self.conn.send(p.reply(cmd.term, p.error(label, p.QUEUE_FULL), session_id=sid))
        raise _Close

    async def _read_stream(self, spool: Spool, cmd: p.Command, sid: int) -> bool:
        """Read INSTREAM chunks into ``spool``; False when over the size limit."""
        limit = self.settings.stream_max_length
        timeout = self.settings.read_timeout
        try:
            while True:
                (size,) = p.CHUNK_HEADER.unpack(await self.conn.read_exact(4, timeout))
                if size == 0:
                    return True
                if spool.size + size > limit:
                    return False
                while size:
                    data = await self.conn.read_some(size, timeout)
                    spool.write(data)
                    size -= len(data)
        except TimeoutError:
            await self._timed_out()
            raise  # not reached: _timed_out raises _Close

    async def _instream(self, cmd: p.Command, sid: int) -> Coroutine[Any, Any, None] | None:
        ticket = self._admit()
        if ticket is None:
            await self._refuse_busy(cmd, sid, p.STREAM_NAME)
            return None
        spool = Spool(self.settings.spool_threshold, self.settings.spool_dir)
        try:
            if not await self._read_stream(spool, cmd, sid):
                await self.conn.send(p.reply(cmd.term, p.SIZE_LIMIT_EXCEEDED, session_id=sid))
                raise _Close
        except BaseException:
            spool.close()
            ticket.release()
            raise
        payload, fd = spool.job_parts()
        job = _job(payload, fd, label=f"INSTREAM {spool.size}B")
        return self._scan_and_reply(cmd, sid, ticket, job, p.STREAM_NAME, spool.close)

    async def _fildes(self, cmd: p.Command, sid: int) -> Coroutine[Any, Any, None] | None:
        try:
            fd = await self.conn.wait_fd(self.settings.read_timeout)
        except TimeoutError:
            await self._timed_out()
            return None
        if fd is None:
            await self.conn.send(p.reply(cmd.term, p.NO_FILE_DESCRIPTOR, session_id=sid))
            raise _Close
        name = f"fd[{fd}]"
        ticket = self._admit()
        if ticket is None:
            os.close(fd)
            await self._refuse_busy(cmd, sid, name)
            return None
        job = Job({"kind": "fd"}, fd=fd, label=f"FILDES {name}")
        return self._scan_and_reply(cmd, sid, ticket, job, name, lambda: os.close(fd))

    async def _scan_and_reply(
        self,
        cmd: p.Command,
        sid: int,
        ticket: Ticket,
        job: Job,
        name: str,
        cleanup: Callable[[], None],
        *,
        all_matches: bool = False,
    ) -> None:
        try:
            result = await self.ctx.pool.run(job)
        finally:
            cleanup()
        try:
            lines = self._lines(name, result, all_matches=all_matches)
            await self.conn.send(b"".join(p.reply(cmd.term, ln, session_id=sid) for ln in lines))
        finally:
            ticket.release()

    def _lines(self, name: str, result: dict[str, Any], *, all_matches: bool) -> list[str]:
        verdict = self._verdict(result)
        if verdict is None:
            return [p.error(name, p.reason_text(str(result.get("error", "Scan failed"))))]
        return p.verdict_lines(
            name, verdict, unscanned=self.settings.unscanned_reply, all_matches=all_matches
        )

    def _verdict(self, result: dict[str, Any]) -> Verdict | None:
        if "verdict" not in result:
            self.ctx.counters.add_error()
            return None
        verdict = Verdict.from_dict(result["verdict"])
        self.ctx.counters.add(verdict)
        return verdict

    # --- MAILSCAN -------------------------------------------------------------------

    async def _mailscan(self, cmd: p.Command, sid: int) -> Coroutine[Any, Any, None] | None:
        try:
            envelope = Envelope.from_dict(json.loads(cmd.arg or "{}"))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            text = p.error("MAILSCAN", f"Bad envelope: {p.clean_name(str(exc))}.")
            await self.conn.send(p.reply(cmd.term, text, session_id=sid))
            raise _Close from exc
        ticket = self._admit()
        if ticket is None:
            await self._refuse_busy(cmd, sid, "MAILSCAN")
            return None
        received = time.perf_counter()
        spool = Spool(self.settings.spool_threshold, self.settings.spool_dir)
        try:
            complete = await self._read_stream(spool, cmd, sid)
        except BaseException:
            spool.close()
            ticket.release()
            raise
        if not complete:
            # the agent gets a verdict it can apply its 'unscanned' policy to
            spool.close()
            ticket.release()
            limit = self.settings.stream_max_length
            verdict = Verdict(
                Status.UNSCANNED,
                reason=f"limit: message larger than stream_max_length ({limit} bytes)",
                size=spool.size,
            )
            self.ctx.counters.add(verdict)
            await self.conn.send(p.reply(cmd.term, self._json(verdict, {}), session_id=sid))
            raise _Close
        payload, fd = spool.job_parts()
        job = _job(payload, fd, label=f"MAILSCAN {envelope.queue_id or ''} {spool.size}B")
        return self._mailscan_reply(cmd, sid, ticket, job, spool, received)

    async def _mailscan_reply(
        self, cmd: p.Command, sid: int, ticket: Ticket, job: Job, spool: Spool, received: float
    ) -> None:
        queued = time.perf_counter()
        try:
            result = await self.ctx.pool.run(job)
        finally:
            spool.close()
        try:
            verdict = self._verdict(result)
            if verdict is None:
                verdict = Verdict(
                    Status.ERROR,
                    reason=p.clean_name(str(result.get("error", "scan failed"))),
                    size=spool.size,
                )
            done = time.perf_counter()
            timings = {"receive": queued - received, "total": done - received}
            await self.conn.send(p.reply(cmd.term, self._json(verdict, timings), session_id=sid))
        finally:
            ticket.release()

    def _json(self, verdict: Verdict, timings: dict[str, float]) -> str:
        data = verdict.to_dict()
        data["timings"].update(timings)
        data["database"] = self.ctx.database()
        # ensure_ascii: the reply stays one line whatever the names contain
        return json.dumps(data, ensure_ascii=True, separators=(",", ":"))

    # --- path scans -------------------------------------------------------------------

    async def _path_scan(self, cmd: p.Command, sid: int) -> Coroutine[Any, Any, None] | None:
        path = cmd.arg or ""
        shown = p.clean_name(path)
        if not self.settings.path_scans:
            await self.conn.send(
                p.reply(cmd.term, p.error(shown, p.PATH_SCANS_DISABLED), session_id=sid)
            )
            return None
        ticket = self._admit()
        if ticket is None:
            await self._refuse_busy(cmd, sid, shown)
            return None
        return self._path_scan_reply(cmd, sid, ticket, path, shown)

    async def _path_scan_reply(
        self, cmd: p.Command, sid: int, ticket: Ticket, path: str, shown: str
    ) -> None:
        try:
            lines = await self._scan_tree(cmd, path, shown)
            await self.conn.send(b"".join(p.reply(cmd.term, ln, session_id=sid) for ln in lines))
        finally:
            ticket.release()

    async def _scan_tree(self, cmd: p.Command, path: str, shown: str) -> list[str]:
        try:
            info = await asyncio.to_thread(os.stat, path)
        except OSError as exc:
            return [p.error(shown, f"File path check failure: {exc.strerror}.")]
        all_matches = cmd.name == "ALLMATCHSCAN"
        stop_at_first = cmd.name == "SCAN"
        parallel = cmd.name == "MULTISCAN" and stat.S_ISDIR(info.st_mode)
        out: list[str] = []
        totals = {"files": 0, "errors": 0, "found": 0}

        async def one(file: str, follow: bool) -> None:
            header = {"kind": "path", "path": file, "follow": follow, "all": all_matches}
            result = await self.ctx.pool.run(Job(header, label=f"{cmd.name} {file}"))
            lines = self._lines(p.clean_name(file), result, all_matches=all_matches)
            totals["files"] += 1
            if "verdict" not in result or any(p.is_failure(x) for x in lines):
                totals["errors"] += 1
            if any(p.is_found(x) for x in lines):
                totals["found"] += 1
            out.extend(x for x in lines if not x.endswith(": OK"))

        if not stat.S_ISDIR(info.st_mode):
            await one(path, True)
        else:
            width = self.ctx.pool.options.workers if parallel else 1
            files = _walk(path)
            while True:
                batch = await asyncio.to_thread(_take, files, _WALK_BATCH)
                if not batch:
                    break
                for start in range(0, len(batch), width):
                    group = batch[start : start + width]
                    await asyncio.gather(*(one(f, False) for f in group))
                    if stop_at_first and totals["found"]:
                        break
                if stop_at_first and totals["found"]:
                    break
        if not totals["found"] and totals["errors"] != totals["files"]:
            out.append(p.ok(shown))
        return out


def _job(payload: bytes | memoryview, fd: int | None, *, label: str) -> Job:
    if fd is not None:
        return Job({"kind": "fd"}, fd=fd, label=label)
    header = {"kind": "bytes", "inline": True, "size": len(payload)}
    return Job(header, payload=payload, label=label)


def _walk(top: str) -> Iterator[str]:
    """Regular files below ``top``, in name order; symbolic links are not followed."""
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            with contextlib.suppress(OSError):
                if stat.S_ISREG(os.lstat(full).st_mode):
                    yield full


def _take(it: Iterator[str], n: int) -> list[str]:
    return list(itertools.islice(it, n))
