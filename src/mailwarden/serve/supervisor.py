"""The supervisor's loop: keep the daemon and the agents running, stop them in order.

Usage (``mailwarden serve`` after loading the configuration and dropping
privileges)::

    code = asyncio.run(Supervisor(settings, plan(config, settings)).run())

- The daemon starts first; the agents start once it answers PING, so the
  first message an agent takes can be scanned.  An agent is ready once it
  holds a socket listening on its address (``listening.py``); one that
  listens nowhere (update-watch), once it has run ``agent_settle_time``.
- A child that exits is started again after a delay that doubles with each
  exit in a row (``backoff.py``); one that keeps exiting before it is ready
  is given up on with an error line naming it, and the others keep serving.
  When no child is left, serve exits with status 1.
- After a child's leader exits, whatever is left of its process group (the
  daemon's loaders and workers) is killed, so a crash leaves no orphans.
- SIGTERM or SIGINT: the agents get SIGTERM (they finish the messages they
  hold, which needs the daemon), then the daemon; a child still running
  ``stop_timeout`` seconds later is killed with its group.  Exit status 0.
- Chores (``chores=``): coroutines serve runs in its own process beside the
  children, such as the quarantine's hourly purge; cancelled on stop.
- SIGHUP: forwarded to the daemon, which reloads its signature database; a
  child serve had given up on is tried again.

SECURITY: runs with the identity serve dropped to; it starts only the
argument vectors ``children.plan`` built, and signals only process groups it
created itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from mailwarden.daemon.client import AsyncDaemonClient, DaemonError
from mailwarden.serve.backoff import Backoff, BackoffPolicy
from mailwarden.serve.children import DAEMON, ChildSpec
from mailwarden.serve.listening import listens_on
from mailwarden.serve.process import describe_exit, kill_group, signal_leader, spawn
from mailwarden.serve.settings import ServeSettings

log = logging.getLogger("mailwarden.serve")

#: seconds between readiness probes while a child starts
_PROBE_INTERVAL = 0.2


@dataclass(eq=False)
class _Child:
    spec: ChildSpec
    backoff: Backoff
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    process: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None
    ready: bool = False
    given_up: bool = False


class Supervisor:
    def __init__(
        self,
        settings: ServeSettings,
        specs: list[ChildSpec],
        *,
        chores: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
    ) -> None:
        self.settings = settings
        # periodic work in serve's own process (the quarantine's retention):
        # started with the daemon, cancelled when serve stops
        self.chores = list(chores)
        policy = BackoffPolicy(
            first=settings.restart_delay,
            cap=settings.restart_delay_max,
            stable_after=settings.stable_after,
            give_up_after=settings.start_failures,
        )
        self.children = [_Child(spec, Backoff(policy)) for spec in specs]
        self._stopping = asyncio.Event()
        self._daemon_ready = asyncio.Event()
        self._changed = asyncio.Event()
        self._agents_started = False

    @property
    def daemon(self) -> _Child:
        return self.children[0]

    @property
    def agents(self) -> list[_Child]:
        return self.children[1:]

    # --- the main loop -----------------------------------------------------------------

    async def run(self) -> int:
        """Supervise until told to stop (0) or until every child was given up on (1)."""
        self._install_signal_handlers()
        self._launch(self.daemon)
        chores = [asyncio.create_task(_chore(c), name="serve:chore") for c in self.chores]
        code = 0
        while not self._stopping.is_set():
            self._changed.clear()
            if self._daemon_ready.is_set() and not self._agents_started:
                self._agents_started = True
                for agent in self.agents:
                    self._launch(agent)
            if all(c.given_up for c in self._launched()):
                log.error("every child has been given up on; stopping")
                code = 1
                break
            await _first(self._stopping, self._changed)
        for chore in chores:
            chore.cancel()
        await asyncio.gather(*chores, return_exceptions=True)
        await self._stop_all()
        return code

    def _launched(self) -> list[_Child]:
        return [c for c in self.children if c.task is not None]

    def _launch(self, child: _Child) -> None:
        child.given_up = False
        child.stop.clear()
        child.task = asyncio.create_task(self._keep(child), name=f"serve:{child.spec.name}")

    # --- one child ---------------------------------------------------------------------

    async def _keep(self, child: _Child) -> None:
        """Run ``child`` again and again until it is stopped or given up on."""
        name = child.spec.name
        while not child.stop.is_set():
            log.debug("%s: running %s", name, shlex.join(child.spec.argv))
            try:
                proc = await spawn(child.spec.argv)
            except OSError as exc:
                log.error("%s: cannot start: %s", name, exc)
                proc = None
            started = time.monotonic()
            child.ready = False
            if proc is not None:
                child.process = proc
                log.info("%s: started, pid %d", name, proc.pid)
                await self._watch(child, proc)
                log_exit = log.info if child.stop.is_set() else log.warning
                log_exit("%s: %s", name, describe_exit(proc.returncode))
            if child.stop.is_set():
                break
            decision = child.backoff.exited(
                ran_for=time.monotonic() - started, was_ready=child.ready
            )
            if decision.give_up:
                log.error(
                    "%s: failed %d times in a row before it was ready; not restarting it "
                    "(fix the cause, then send serve SIGHUP or restart it)",
                    name,
                    decision.start_failures,
                )
                child.given_up = True
                self._changed.set()
                return
            log.info("%s: restarting in %.1fs", name, decision.delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(child.stop.wait(), decision.delay)

    async def _watch(self, child: _Child, proc: asyncio.subprocess.Process) -> None:
        """Wait for ``proc`` to exit, stopping it when asked; then clear its group."""
        readiness = asyncio.create_task(self._become_ready(child, proc))
        exited = asyncio.create_task(proc.wait())
        try:
            await _first_task(exited, child.stop)
            if not exited.done():
                signal_leader(proc, signal.SIGTERM)
                try:
                    await asyncio.wait_for(asyncio.shield(exited), self.settings.stop_timeout)
                except TimeoutError:
                    log.warning(
                        "%s: still running %.0fs after SIGTERM; killing it",
                        child.spec.name,
                        self.settings.stop_timeout,
                    )
                    kill_group(proc.pid)
                    await exited
        finally:
            readiness.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await readiness
            # the leader is gone; anything left in its group has lost its parent
            kill_group(proc.pid)

    async def _become_ready(self, child: _Child, proc: asyncio.subprocess.Process) -> None:
        spec = child.spec
        if spec.ping is not None:
            address, is_tcp = spec.ping, spec.ping_is_tcp
            probe, what = (lambda: _answers_ping(address, is_tcp)), "answer to PING"
        elif spec.listen is not None:
            endpoint = spec.listen

            async def probe_listen() -> bool:
                return listens_on(proc.pid, endpoint)

            probe, what = probe_listen, f"listening socket on {endpoint}"
        else:
            # no socket to look for (update-watch): ready once it has kept running
            # a while, like supervisord's startsecs, so one that dies of a bad
            # configuration counts as a failed start and is given up on
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), spec.settle)
            if proc.returncode is not None:
                return  # _keep reports how it exited
            probe, what = None, ""
        if probe is not None:
            log.debug("%s: waiting for its %s", spec.name, what)
        if probe is not None and not await _wait_until(probe, spec.start_timeout, proc):
            if proc.returncode is not None:
                return  # _keep reports how it exited
            log.error(
                "%s: no %s within %.0fs of its start; killing it",
                spec.name,
                what,
                spec.start_timeout,
            )
            kill_group(proc.pid)
            return
        child.ready = True
        log.info("%s: ready", spec.name)
        if spec.name == DAEMON:
            self._daemon_ready.set()
            self._changed.set()

    # --- signals and stopping ------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._request_stop, signum)
        loop.add_signal_handler(signal.SIGHUP, self._reload)

    def _request_stop(self, signum: int) -> None:
        if not self._stopping.is_set():
            log.info("%s: stopping", signal.Signals(signum).name)
            self._stopping.set()

    def _reload(self) -> None:
        if self._stopping.is_set():
            return  # a child restarted now would only be stopped again
        daemon = self.daemon.process
        if daemon is not None and daemon.returncode is None:
            log.info("SIGHUP: the daemon reloads its signature database")
            signal_leader(daemon, signal.SIGHUP)
        for child in self._launched():
            if child.given_up:
                log.info("SIGHUP: trying %s again", child.spec.name)
                child.backoff.reset()
                self._launch(child)
        self._changed.set()

    async def _stop_all(self) -> None:
        # agents first: what they hold still needs the daemon to be scanned
        for group in (self.agents, [self.daemon]):
            for child in group:
                child.stop.set()
            tasks = [c.task for c in group if c.task is not None]
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        log.info("stopped")


async def _chore(work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run one chore; a failure is logged and ends that chore only, never serve."""
    try:
        await work()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("a periodic task failed and is not run again until serve restarts")


async def _wait_until(
    probe: Callable[[], Awaitable[bool]], timeout: float, proc: asyncio.subprocess.Process
) -> bool:
    """Run ``probe`` until it succeeds, ``proc`` exits, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while proc.returncode is None and time.monotonic() < deadline:
        if await probe():
            return True
        await asyncio.sleep(_PROBE_INTERVAL)
    return False


async def _answers_ping(address: str, is_tcp: bool) -> bool:
    if is_tcp:
        client = AsyncDaemonClient(tcp=address, reuse=False, timeout=5, connect_timeout=1)
    else:
        client = AsyncDaemonClient(address, reuse=False, timeout=5, connect_timeout=1)
    try:
        return await client.ping()
    except (DaemonError, OSError):
        return False


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def _first_task(task: asyncio.Task[int], event: asyncio.Event) -> None:
    waiter = asyncio.create_task(event.wait())
    try:
        await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
