"""Starting and signalling one child process of the supervisor.

Usage::

    proc = await spawn(spec.argv)          # own process group; dies with serve
    signal_leader(proc, signal.SIGTERM)    # ask the child itself to stop
    kill_group(proc.pid)                   # SIGKILL whatever is left of its group
    describe_exit(proc.returncode)         # "exit status 2", "killed by SIGKILL"

Each child leads its own process group, so a terminal's Ctrl-C reaches
serve alone (which then stops the children in order) and the daemon's
loaders and workers can be killed together with it.  Each child also asks
the kernel for SIGTERM when serve dies, so even a supervisor killed with
SIGKILL leaves no agent listening behind it.  Standard output and error
are inherited: under systemd they go to the journal, in a terminal to it.

SECURITY: children inherit serve's (already dropped) identity and
environment, and get /dev/null as standard input.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Sequence

from mailwarden.parentdeath import die_with_parent


async def spawn(argv: Sequence[str]) -> asyncio.subprocess.Process:
    parent = os.getpid()
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        process_group=0,
        preexec_fn=lambda: die_with_parent(parent),
    )


def signal_leader(proc: asyncio.subprocess.Process, signum: int) -> None:
    """Send ``signum`` to the child itself (not its group); nothing if it has exited."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)


def kill_group(pgid: int) -> None:
    """SIGKILL every process left in the group ``pgid`` leads (or led)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"
