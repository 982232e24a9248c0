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
from mailwarden.serve.listening import Endpoint, parse_endpoint
from mailwarden.serve.settings import ServeSettings, config_error

DAEMON = "daemon"


@dataclass(frozen=True, slots=True)
class ChildSpec:
    name: str
    argv: tuple[str, ...]
    #: the daemon is ready when it answers PING at this address (a unix socket
    #: path, or HOST:PORT when ``ping_is_tcp``)
    ping: str | None = None
    ping_is_tcp: bool = False
    #: an agent is ready when it holds a socket listening here
    listen: Endpoint | None = None
    #: how long it may take to become ready before it is killed
    start_timeout: float = 0.0
    #: a child with neither of the above is ready once it has run this long
    settle: float = 0.0


@dataclass(frozen=True, slots=True)
class Agent:
    #: its configuration section
    section: str
    #: the arguments it gets after ``-c CONFIG``
    args: Callable[[Config], list[str]]
    #: the key of that section that holds where it listens (HOST:PORT,
    #: unix:PATH or Sendmail's inet:PORT@HOST); "" for one that listens nowhere
    listen_key: str = "listen"
    #: the mailwarden command it runs, when that is not its name
    command: str = ""


def _daemon_socket(config: Config) -> list[str]:
    # the same socket the daemon was started on, whatever the agent's own flags say
    return ["--daemon-socket", config["daemon"]["socket"]]


#: agent command name -> how serve starts it
AGENTS: Mapping[str, Agent] = {
    "smtp-filter": Agent("smtp_filter", _daemon_socket),
    "smtp-proxy": Agent("smtp_proxy", _daemon_socket),
    "milter": Agent("milter", _daemon_socket, listen_key="socket"),
    "pop3-proxy": Agent("pop3_proxy", _daemon_socket),
    "imap-proxy": Agent("imap_proxy", _daemon_socket),
    "mda-agent": Agent("mda", _daemon_socket, listen_key="agent_socket"),
    # read the store and ask the daemon on the sockets their sections name
    "web": Agent("web", lambda _config: []),
    "metrics": Agent("metrics", lambda _config: []),
    # signature updates: follow freshclam's folder ([update] watch_dir), and
    # publish the set in use to other nodes ([update] mirror_listen)
    "update-watch": Agent("update", lambda _config: ["--watch"], listen_key="", command="update"),
    "update-mirror": Agent(
        "update", lambda _config: ["--serve-mirror"], listen_key="mirror_listen", command="update"
    ),
}


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
    listeners: dict[Endpoint, str] = {}
    for name in settings.agents:
        agent = AGENTS.get(name)
        if agent is None:
            raise config_error(config, "serve", "agents", f"unknown agent {name!r}")
        endpoint = _endpoint(config, agent)
        if endpoint is not None and endpoint in listeners:
            raise config_error(
                config,
                agent.section,
                agent.listen_key,
                f"{name} and {listeners[endpoint]} would both listen on {endpoint}",
            )
        if endpoint is not None:
            listeners[endpoint] = name
        specs.append(
            ChildSpec(
                name,
                command(agent.command or name, settings, agent.args(config)),
                listen=endpoint,
                start_timeout=settings.agent_start_timeout,
                settle=settings.agent_settle_time,
            )
        )
    return specs


def _endpoint(config: Config, agent: Agent) -> Endpoint | None:
    if not agent.listen_key:
        return None
    text = config[agent.section].get(agent.listen_key) or ""
    if not text:
        return None
    try:
        return parse_endpoint(text)
    except ValueError as exc:
        raise config_error(config, agent.section, agent.listen_key, str(exc)) from exc
