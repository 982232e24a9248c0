"""The milter agent: Sendmail's and Postfix's mail filter protocol, on asyncio.

Public API::

    from mailwarden.intercept.milter import MilterSettings, start_milter
    settings = MilterSettings.from_config(config, socket="inet:8890@127.0.0.1")
    server = await start_milter(settings, config)    # listening
    await server.stop()

Modules: ``protocol`` (framing, constants, parsing, reply encoding),
``settings`` (``[milter]`` and flags; Sendmail's socket notation),
``envelope`` (macros and commands -> Envelope, direction), ``session`` (the
per-connection state machine; the message streamed to a spool; the shared
pipeline at EOM), ``actions`` (the pipeline's result -> milter replies),
``server`` (the listener and the process).  docs/milter.md is the manual.

SECURITY: see each module.  In short: the socket is local (unix, or
loopback TCP) and only the MTA should reach it; every packet is bounded and
parsed defensively; the milter never scans or decides itself, and answers
with a temporary failure whenever it cannot be sure.
"""

from mailwarden.intercept.milter.protocol import ProtocolError
from mailwarden.intercept.milter.server import MilterServer, run_milter, start_milter
from mailwarden.intercept.milter.session import MilterSession
from mailwarden.intercept.milter.settings import Listen, MilterSettings, parse_socket

__all__ = [
    "Listen",
    "MilterServer",
    "MilterSession",
    "MilterSettings",
    "ProtocolError",
    "parse_socket",
    "run_milter",
    "start_milter",
]
