"""What ``mailwarden serve`` starts: the daemon, then one entry per enabled agent.

Usage::

    specs = plan(config, settings)     # [daemon, *agents in [serve] agents order]
    for spec in specs: print(spec.name, shlex.join(spec.argv))

Each child is ``python -m mailwarden COMMAND -c CONFIG ...`` with the
interpreter serve itself runs on, so a virtual environment or an
installation prefix carries over.  An agent is one entry in :data:`AGENTS`:
its command name (the name ``[serve] agents`` uses) and a function that
builds its own arguments from the configuration; adding an agent to serve
is adding one entry here and its name to ``SERVE_AGENTS`` in
``config/schema.py``.  Everything else an agent needs it reads from its own
section of the same file.

SECURITY: the argument vectors are built from the validated configuration
only and run without a shell; no value is interpolated into a command line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mailwarden.config import Config
from mailwarden.serve.settings import ServeSettings, config_error

DAEMON = "daemon"


@dataclass(frozen=True, slots=True)
class ChildSpec:
    name: str
    argv: tuple[str, ...]
    #: the daemon is probed with PING at this address (a unix socket path or
    #: HOST:PORT); agents count as ready once they have stayed up ``ready_after``
    ping: str | None = None
    ping_is_tcp: bool = False
    ready_after: float = 0.0
    #: how long the daemon may take to answer its first PING
    start_timeout: float = 0.0


ArgvBuilder = Callable[[Config], list[str]]


def _daemon_socket_args(config: Config) -> list[str]:
    socket = config["daemon"]["socket"]
    return ["--daemon-socket", socket] if socket else []


#: agent command name -> the arguments it gets after ``-c CONFIG``
AGENTS: Mapping[str, ArgvBuilder] = {}


def command(name: str, settings: ServeSettings, extra: list[str]) -> tuple[str, ...]:
    config_args = ["-c", settings.config_file] if settings.config_file else []
    return (sys.executable, "-m", "mailwarden", name, *config_args, *extra)


def plan(config: Config, settings: ServeSettings) -> list[ChildSpec]:
    """The children to run, the daemon first; ConfigError when they cannot work together."""
    socket = config["daemon"]["socket"]
    tcp = config["daemon"]["tcp"]
    if not socket and not tcp:
        raise config_error(
            config, "daemon", "socket", "serve needs the daemon's socket (or tcp) to reach it"
        )
    if settings.agents and not socket:
        raise config_error(
            config, "daemon", "socket", "the agents reach the daemon on its unix socket: set one"
        )
    specs = [
        ChildSpec(
            DAEMON,
            command(DAEMON, settings, ["--foreground"]),
            ping=socket or tcp,
            ping_is_tcp=not socket,
            start_timeout=settings.daemon_start_timeout,
        )
    ]
    for name in settings.agents:
        builder = AGENTS.get(name)
        if builder is None:
            raise config_error(config, "serve", "agents", f"unknown agent {name!r}")
        specs.append(
            ChildSpec(
                name,
                command(name, settings, builder(config)),
                ready_after=settings.agent_ready_after,
            )
        )
    return specs
