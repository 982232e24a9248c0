"""``mailwarden serve``: the supervisor that runs the daemon and the enabled agents.

Public API::

    from mailwarden.serve import ServeSettings, plan, Supervisor
    settings = ServeSettings.from_config(config, config_file=path)
    specs = plan(config, settings)                  # daemon first, then agents
    code = asyncio.run(Supervisor(settings, specs).run())

Layout: ``settings`` (the [serve] section), ``children`` (the table of what
can be started and how), ``backoff`` (restart delays and giving up),
``process`` (one child: process group, signals), ``listening``
(is this child the one listening on its port), ``prepare`` (folders made
as root before the privileges are dropped), ``supervisor`` (the loop).

SECURITY: serve drops root (``mailwarden.privileges``) before it starts any
child; see each module.
"""

from mailwarden.serve.backoff import Backoff, BackoffPolicy, Decision
from mailwarden.serve.children import AGENTS, DAEMON, Agent, ChildSpec, plan
from mailwarden.serve.prepare import prepare_folders, runs_as
from mailwarden.serve.settings import ServeSettings, config_error
from mailwarden.serve.supervisor import Supervisor

__all__ = [
    "AGENTS",
    "DAEMON",
    "Agent",
    "Backoff",
    "BackoffPolicy",
    "ChildSpec",
    "Decision",
    "ServeSettings",
    "Supervisor",
    "config_error",
    "plan",
    "prepare_folders",
    "runs_as",
]
