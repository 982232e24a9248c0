"""The supervisor's settings: the ``[serve]`` section plus where the configuration came from.

Usage::

    settings = ServeSettings.from_config(config, config_file="/etc/mailwarden/mailwarden.toml")
    settings.agents, settings.restart_delay, settings.stop_timeout
    raise config_error(config, "daemon", "socket", "...")   # located at file:line

SECURITY: values only; the user and group named here are resolved and
acted on by ``mailwarden.privileges``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailwarden.config import Config
from mailwarden.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ServeSettings:
    #: the file children are given with ``-c``; None: they use the embedded defaults
    config_file: str | None
    agents: tuple[str, ...]
    user: str
    group: str
    restart_delay: float
    restart_delay_max: float
    stable_after: float
    start_failures: int
    agent_start_timeout: float
    agent_settle_time: float
    daemon_start_timeout: float
    stop_timeout: float

    @classmethod
    def from_config(cls, config: Config, *, config_file: str | None) -> ServeSettings:
        s = config["serve"]
        return cls(
            config_file=config_file,
            agents=tuple(s["agents"]),
            user=s["user"],
            group=s["group"],
            restart_delay=s["restart_delay"],
            restart_delay_max=s["restart_delay_max"],
            stable_after=s["stable_after"],
            start_failures=s["start_failures"],
            agent_start_timeout=s["agent_start_timeout"],
            agent_settle_time=s["agent_settle_time"],
            daemon_start_timeout=s["daemon_start_timeout"],
            stop_timeout=s["stop_timeout"],
        )


def config_error(config: Config, section: str, key: str, message: str) -> ConfigError:
    """A ConfigError located where ``section.key`` was set, else in the main file."""
    origin = config.origins.get((section, key), "")
    file, _, number = origin.rpartition(":")
    if not number.isdigit():
        file, number = origin, ""
    return ConfigError(
        message,
        file=file or (config.files[0] if config.files else None),
        line=int(number) if number else None,
        key=f"{section}.{key}",
    )
