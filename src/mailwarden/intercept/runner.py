"""Run an agent until SIGTERM or SIGINT: the process side shared by every agent.

::

    return run(lambda: build(settings, config), name="smtp-filter", where="127.0.0.1:10025",
               config=config)

``build`` is a coroutine function that returns a started object with an
``async stop()`` and a ``reload()`` (SIGHUP: read the configuration's policy
again); ``run`` blocks in a fresh event loop and returns the exit status (0
after SIGTERM or SIGINT, 2 when the agent cannot start).

SECURITY: an agent started as root becomes ``[serve] user`` right after
``build`` has bound its listener (``privileges.drop_root``), before it reads
any mail; an unknown user stops it before it binds anything.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from mailwarden.privileges import drop_root, service_identity

if TYPE_CHECKING:
    from mailwarden.config import Config

log = logging.getLogger("mailwarden.intercept")


class Stoppable(Protocol):
    async def stop(self) -> None: ...

    def reload(self) -> None: ...


def run(
    build: Callable[[], Awaitable[Stoppable]],
    *,
    name: str,
    where: str,
    config: Config,
    own: tuple[str, ...] = (),
) -> int:
    """Start the agent, wait for a signal, stop it; see the module documentation.

    ``own``: the unix socket paths the agent binds, handed to the user it drops to.
    """
    target = service_identity(config)
    return asyncio.run(_main(build, name, where, lambda: drop_root(target, own=own)))


async def _main(
    build: Callable[[], Awaitable[Stoppable]],
    name: str,
    where: str,
    drop: Callable[[], object],
) -> int:
    try:
        agent = await build()
    except OSError as exc:
        print(f"mailwarden {name}: cannot listen on {where}: {exc}", file=sys.stderr)
        return 2
    drop()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, agent.reload)
    log.info("%s listening on %s", name, where)
    await stop.wait()
    log.info("%s stopping", name)
    await agent.stop()
    return 0
