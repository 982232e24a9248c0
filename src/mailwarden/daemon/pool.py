"""The front end's view of the workers: generations, a bounded queue, timeouts, reload.

Usage (inside the front end's event loop)::

    pool = WorkerPool(PoolOptions(workers=2, queue=64, scan_timeout=120.0), start_generation)
    await pool.start()                          # first database; raises GenerationFailed
    ticket = pool.admit()                       # None: queue full, answer at once
    result = await pool.run(job, ticket=ticket) # {"verdict": {...}} or {"error": "..."}
    await pool.reload()                         # new generation beside the old one, then swap
    await pool.close()

A *generation* is one loader process and the workers it forked after loading
the database.  Requests go to the current generation's idle workers; a reload
starts the next generation while the current one keeps serving, and only when
the new one has loaded and its workers are connected does it become current.
The old one then drains: its idle workers are released, busy ones finish
their scan first.  A failed load leaves the current generation in place and
its reason in :attr:`WorkerPool.last_reload`.

Admission bounds both waiting and memory: a request holds a ticket from the
moment its command is read until its reply is sent, and at most
``workers + queue`` tickets exist.  A worker that overruns ``scan_timeout``
is killed and replaced; a worker that dies fails only its own request.

SECURITY: the pool holds no database and reads no mail; it moves descriptors
and bytes between clients' requests and worker processes of the daemon.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mailwarden.daemon.channel import (
    ChannelClosed,
    arecv_frame,
    asend_frame,
    close_fds,
)
from mailwarden.daemon.loader import encode_settings

log = logging.getLogger("mailwarden.daemon")


class GenerationFailed(Exception):
    """A generation's loader could not load the database; the message says why."""


@dataclass(frozen=True, slots=True)
class PoolOptions:
    workers: int
    queue: int
    scan_timeout: float
    #: how long a new generation may take to load and connect its workers
    load_timeout: float = 600.0


@dataclass
class Job:
    """One scan for one worker: a frame header, and bytes or a descriptor."""

    header: dict[str, Any]
    payload: bytes | memoryview = b""
    fd: int | None = None
    #: for STATS: the command and the name shown for it
    label: str = ""
    queued_at: float = field(default_factory=time.monotonic)


@dataclass
class Ticket:
    """An admission slot; released when the reply has been sent."""

    pool: WorkerPool
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.pool._tickets -= 1


@dataclass
class _Worker:
    pid: int
    sock: socket.socket
    generation: Generation
    job: Job | None = None
    started: float = 0.0


@dataclass
class LoadInfo:
    version: str
    signatures: int
    seconds: float
    loaded_at: float


class Generation:
    """One loader process and its workers."""

    def __init__(
        self, number: int, info: LoadInfo, process: asyncio.subprocess.Process, ctl: socket.socket
    ) -> None:
        self.number = number
        self.info = info
        self.process = process
        self.ctl = ctl
        self.workers: list[_Worker] = []
        self.retiring = False
        self.watcher: asyncio.Task[None] | None = None

    async def request_worker(self) -> None:
        with contextlib.suppress(ChannelClosed, OSError):
            await asend_frame(self.ctl, {"op": "spawn"})

    async def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.watcher
        with contextlib.suppress(ChannelClosed, OSError):
            await asend_frame(self.ctl, {"op": "stop"})
        self.ctl.close()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


#: starts a generation: (number, workers) -> Generation, raising GenerationFailed
Starter = Callable[[int, int], Awaitable[Generation]]


class WorkerPool:
    def __init__(self, options: PoolOptions, starter: Starter) -> None:
        self.options = options
        self._starter = starter
        self.current: Generation | None = None
        self.retired: list[Generation] = []
        self._idle: collections.deque[_Worker] = collections.deque()
        self._pending: collections.deque[tuple[Job, asyncio.Future[dict[str, Any]]]] = (
            collections.deque()
        )
        self._tickets = 0
        self._next_generation = 1
        self._reloading: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.last_reload: str = "none"
        self.reloads = 0
        self.timeouts = 0
        self.worker_deaths = 0
        self.rejected = 0
        self.closing = False

    # --- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        self.current = await self._new_generation()

    async def reload(self) -> bool:
        """Load the next generation beside the current one; swap when it is ready.

        Returns False (and keeps the current generation) when the load fails.
        Concurrent calls share one reload.
        """
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.create_task(self._reload())
        task = self._reloading
        await asyncio.shield(task)
        return self.last_reload.startswith("ok")

    async def _reload(self) -> None:
        started = time.perf_counter()
        try:
            new = await self._new_generation()
        except GenerationFailed as exc:
            self.last_reload = f"failed: {exc}"
            log.error("reload failed, the loaded database keeps serving: %s", exc)
            return
        old, self.current = self.current, new
        self._idle.extend(w for w in new.workers if w.job is None)
        self.reloads += 1
        self.last_reload = (
            f"ok: generation {new.number}, {new.info.signatures} signatures, "
            f"{time.perf_counter() - started:.2f}s"
        )
        log.info("reloaded: %s", self.last_reload)
        if old is not None:
            self._retire(old)
        self._pump()

    async def _new_generation(self) -> Generation:
        number = self._next_generation
        self._next_generation += 1
        gen = await self._starter(number, self.options.workers)
        try:
            await asyncio.wait_for(self._collect_workers(gen), self.options.load_timeout)
        except (TimeoutError, ChannelClosed, OSError) as exc:
            await self._kill(gen)
            raise GenerationFailed(f"workers did not start: {exc or type(exc).__name__}") from exc
        gen.watcher = asyncio.create_task(self._watch_loader(gen))
        return gen

    async def _collect_workers(self, gen: Generation) -> None:
        while len(gen.workers) < self.options.workers:
            await self._accept_worker(gen)

    async def _accept_worker(self, gen: Generation) -> None:
        header, _payload, fds = await arecv_frame(gen.ctl)
        if header.get("event") != "worker" or len(fds) != 1:
            close_fds(fds)
            raise ChannelClosed(f"unexpected message from loader: {header}")
        sock = socket.socket(fileno=fds[0])
        sock.setblocking(False)
        worker = _Worker(int(header["pid"]), sock, gen)
        gen.workers.append(worker)
        if gen is self.current or self.current is None:
            self._idle.append(worker)
            self._pump()

    async def _watch_loader(self, gen: Generation) -> None:
        """Replacement workers arrive on the loader's channel after setup."""
        with contextlib.suppress(ChannelClosed, OSError, ValueError):
            while not gen.retiring:
                await self._accept_worker(gen)

    def _retire(self, gen: Generation) -> None:
        gen.retiring = True
        self.retired.append(gen)
        for worker in [w for w in self._idle if w.generation is gen]:
            self._idle.remove(worker)
            self._release_worker(worker)
        self._maybe_finish(gen)

    def _maybe_finish(self, gen: Generation) -> None:
        if gen.retiring and not gen.workers:
            if gen in self.retired:
                self.retired.remove(gen)
            self._spawn(gen.stop())

    def _release_worker(self, worker: _Worker) -> None:
        """Close a worker's channel: it exits after the scan it may be running."""
        worker.sock.close()
        gen = worker.generation
        if worker in gen.workers:
            gen.workers.remove(worker)
        self._maybe_finish(gen)

    async def _kill(self, gen: Generation) -> None:
        for worker in list(gen.workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGKILL)
            worker.sock.close()
        gen.workers.clear()
        gen.retiring = True
        await gen.stop()

    async def close(self) -> None:
        self.closing = True
        while self._pending:
            _job, future = self._pending.popleft()
            if not future.done():
                future.set_result({"error": "Daemon shutting down."})
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        gens = [g for g in (self.current, *self.retired) if g is not None]
        for gen in gens:
            gen.retiring = True
            for worker in list(gen.workers):
                worker.sock.close()
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGTERM)
            gen.workers.clear()
        await asyncio.gather(*(g.stop() for g in gens), return_exceptions=True)

    # --- requests --------------------------------------------------------------

    def admit(self) -> Ticket | None:
        """A slot for one request, or None when ``workers + queue`` are taken."""
        if self.closing or self._tickets >= self.options.workers + self.options.queue:
            self.rejected += 1
            return None
        self._tickets += 1
        return Ticket(self)

    async def run(self, job: Job) -> dict[str, Any]:
        """Scan ``job`` on a worker; the caller owns ``job.fd`` and closes it after."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        entry = (job, future)
        self._pending.append(entry)
        self._pump()
        try:
            return await future
        except asyncio.CancelledError:
            # the client went away: a job not started yet is simply dropped
            with contextlib.suppress(ValueError):
                self._pending.remove(entry)
            raise

    def _pump(self) -> None:
        while self._pending and self._idle:
            job, future = self._pending.popleft()
            if future.done():
                continue
            worker = self._idle.popleft()
            worker.job = job
            worker.started = time.monotonic()
            self._spawn(self._execute(worker, job, future))

    async def _execute(
        self, worker: _Worker, job: Job, future: asyncio.Future[dict[str, Any]]
    ) -> None:
        try:
            fds = [job.fd] if job.fd is not None else []
            await asend_frame(worker.sock, job.header, job.payload, fds)
            header, _payload, extra = await asyncio.wait_for(
                arecv_frame(worker.sock), self.options.scan_timeout
            )
            close_fds(extra)
        except TimeoutError:
            self.timeouts += 1
            log.warning("worker %d overran scan_timeout on %s; replacing it", worker.pid, job.label)
            self._lose_worker(worker, kill=True)
            if not future.done():
                future.set_result({"error": "Time limit reached", "timeout": True})
            return
        except (ChannelClosed, OSError) as exc:
            self.worker_deaths += 1
            log.error("worker %d died on %s: %s", worker.pid, job.label, exc)
            self._lose_worker(worker, kill=True)
            if not future.done():
                future.set_result({"error": "Scanner process died."})
            return
        except asyncio.CancelledError:
            # only at shutdown: whoever waits must still get an answer
            if not future.done():
                future.set_result({"error": "Daemon shutting down."})
            raise
        worker.job = None
        if not future.done():
            future.set_result(header)
        if worker.generation.retiring:
            self._release_worker(worker)
        else:
            self._idle.append(worker)
            self._pump()

    def _lose_worker(self, worker: _Worker, *, kill: bool) -> None:
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGKILL)
        gen = worker.generation
        self._release_worker(worker)
        if not gen.retiring and not self.closing:
            self._spawn(gen.request_worker())

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- figures for STATS -------------------------------------------------------

    @property
    def queued(self) -> int:
        return len(self._pending)

    @property
    def idle(self) -> int:
        return len(self._idle)

    @property
    def live(self) -> int:
        return len(self.current.workers) if self.current else 0

    def active(self) -> list[tuple[str, float]]:
        """(label, seconds) of every job running or waiting, for STATS."""
        now = time.monotonic()
        out: list[tuple[str, float]] = []
        for gen in (self.current, *self.retired):
            if gen is None:
                continue
            out.extend((w.job.label, now - w.started) for w in gen.workers if w.job)
        out.extend((job.label, now - job.queued_at) for job, _f in self._pending)
        return out


async def start_loader(
    number: int,
    workers: int,
    *,
    engine_settings: Any,
    factory: str,
) -> Generation:
    """Start a generation's loader process and wait until its database is loaded."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ours.setblocking(False)
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mailwarden.daemon.loader",
            str(theirs.fileno()),
            str(os.getpid()),
            pass_fds=(theirs.fileno(),),
            stdin=asyncio.subprocess.DEVNULL,
        )
    finally:
        theirs.close()
    started = time.time()
    try:
        await asend_frame(
            ours,
            {
                "op": "load",
                "settings": encode_settings(engine_settings),
                "factory": factory,
                "workers": workers,
            },
        )
        header, _payload, fds = await arecv_frame(ours)
        close_fds(fds)
    except (ChannelClosed, OSError) as exc:
        ours.close()
        await process.wait()
        raise GenerationFailed(f"loader exited: {exc}") from exc
    if header.get("event") != "loaded":
        ours.close()
        await process.wait()
        raise GenerationFailed(str(header.get("reason", header)))
    info = LoadInfo(
        version=str(header.get("version", "")),
        signatures=int(header.get("signatures", 0)),
        seconds=float(header.get("seconds", 0.0)),
        loaded_at=started,
    )
    log.info(
        "generation %d: %d signatures loaded in %.2fs (version %s)",
        number,
        info.signatures,
        info.seconds,
        info.version or "-",
    )
    return Generation(number, info, process, ours)
