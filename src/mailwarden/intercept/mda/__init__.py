"""``mailwarden mda`` and ``mailwarden pipe``: scanning between the MTA and the MDA (S2).

Public API::

    from mailwarden.intercept.mda import Request, run_mda, run_pipe
    code = run_mda(Request(sender, recipients, command=("procmail", "-a", ext)), stdin)
    code = run_pipe(Request(sender, recipients), stdin, stdout)

Modules: ``settings`` (the ``[mda]`` section and exit codes), ``intake``
(standard input, the mbox ``From `` line), ``judge`` (the shared pipeline,
once), ``handoff`` (exec of the original MDA), ``report`` (syslog and the
one-line reason), ``agent`` (the two agents and their error boundary),
``server`` (the resident agent, ``mailwarden mda-agent``, that runs the
pipeline for them; their thin client is ``mailwarden.cli.mda_client``).

Importing this package pulls in the pipeline and the daemon client, never
the engine; a delivery through the resident agent does not import it at all.

SECURITY: see each module.  In short: never exit 0 unless the message was
handed on or the policy quarantined or discarded it; any failure answers
EX_TEMPFAIL so the MTA keeps the mail.
"""

from mailwarden.intercept.mda.agent import Request, run_mda, run_pipe
from mailwarden.intercept.mda.handoff import HandoffError, exec_mda, find_program
from mailwarden.intercept.mda.intake import Intake, IntakeError, read_message
from mailwarden.intercept.mda.judge import Decision, judge
from mailwarden.intercept.mda.report import route_logs, say
from mailwarden.intercept.mda.server import MdaAgent, run_agent, start_agent
from mailwarden.intercept.mda.settings import AgentSettings, ExitCodes, MdaSettings

__all__ = [
    "AgentSettings",
    "Decision",
    "ExitCodes",
    "HandoffError",
    "Intake",
    "IntakeError",
    "MdaAgent",
    "MdaSettings",
    "Request",
    "exec_mda",
    "find_program",
    "judge",
    "read_message",
    "route_logs",
    "run_agent",
    "run_mda",
    "run_pipe",
    "say",
    "start_agent",
]
