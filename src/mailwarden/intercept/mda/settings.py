"""Settings of ``mailwarden mda`` and ``mailwarden pipe``: the ``[mda]`` section plus flags.

::

    settings = MdaSettings.from_config(config, daemon_socket=args.daemon_socket)
    settings.codes.tempfail        # 75 unless [mda] exit_tempfail says otherwise

The exit codes are sysexits(3) values the MTA understands; only
``[mda] exit_*`` chooses them, so one table answers "what does the MTA see".

SECURITY: configuration is trusted; nothing here does I/O.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from mailwarden.config import Config
from mailwarden.errors import ConfigError

#: Before the configuration could be read, the safe answer: the MTA keeps the mail.
EX_TEMPFAIL = os.EX_TEMPFAIL


@dataclass(frozen=True, slots=True)
class ExitCodes:
    """What each outcome exits with; see ``[mda]`` in the configuration reference."""

    tempfail: int = EX_TEMPFAIL
    reject: int = os.EX_NOPERM
    quarantine: int = 0
    discard: int = 0
    usage: int = EX_TEMPFAIL
    pipe_quarantine: int = 1
    pipe_discard: int = 2

    @classmethod
    def from_section(cls, values: dict[str, Any]) -> ExitCodes:
        return cls(
            tempfail=int(values["exit_tempfail"]),
            reject=int(values["exit_reject"]),
            quarantine=int(values["exit_quarantine"]),
            discard=int(values["exit_discard"]),
            usage=int(values["exit_usage"]),
            pipe_quarantine=int(values["pipe_exit_quarantine"]),
            pipe_discard=int(values["pipe_exit_discard"]),
        )


@dataclass(frozen=True, slots=True)
class MdaSettings:
    daemon_socket: str
    spool_threshold: int
    connect_timeout: float
    scan_timeout: float
    codes: ExitCodes

    @classmethod
    def from_config(cls, config: Config, *, daemon_socket: str | None = None) -> MdaSettings:
        values = config["mda"]
        sock = daemon_socket or values["daemon_socket"] or config["daemon"]["socket"]
        if not sock:
            raise ConfigError(
                "mda needs the daemon's unix socket",
                key="--daemon-socket / mda.daemon_socket / daemon.socket",
            )
        return cls(
            daemon_socket=str(sock),
            spool_threshold=int(values["spool_threshold"]),
            connect_timeout=float(values["connect_timeout"]),
            scan_timeout=float(values["scan_timeout"]),
            codes=ExitCodes.from_section(values),
        )


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """The resident agent (``mailwarden mda-agent``): where it listens, how much at once."""

    socket: str
    socket_mode: int
    socket_group: str
    max_requests: int
    #: a larger message is not read: the daemon would refuse to scan it anyway
    max_message: int
    mda: MdaSettings

    @classmethod
    def from_config(
        cls, config: Config, *, socket: str | None = None, daemon_socket: str | None = None
    ) -> AgentSettings:
        values = config["mda"]
        path = socket or values["agent_socket"]
        if not path or not str(path).startswith("/"):
            raise ConfigError(
                f"the mda agent needs an absolute unix socket path, got {path!r}",
                key="--socket / mda.agent_socket",
            )
        return cls(
            socket=str(path),
            socket_mode=int(values["agent_socket_mode"], 8),
            socket_group=str(values["agent_socket_group"]),
            max_requests=int(values["agent_max_requests"]),
            # room for the mbox From_ line, which is not scanned
            max_message=int(config["daemon"]["stream_max_length"]) + 4096,
            mda=MdaSettings.from_config(config, daemon_socket=daemon_socket),
        )
