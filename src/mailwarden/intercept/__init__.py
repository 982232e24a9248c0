"""Interception agents: where mail is caught and handed to the daemon and the policy.

Public API::

    from mailwarden.intercept import Pipeline, Answer        # every agent's sequence
    done = await pipeline.process(message, mode=Mode.AFTER_QUEUE, answer=Answer.PER_MESSAGE)

    from mailwarden.intercept import SmtpSettings, start_filter, start_proxy
    agent = await start_filter(settings, config)              # Postfix content_filter
    agent = await start_proxy(settings, config)               # Postfix smtpd_proxy_filter

Modules: ``pipeline`` (release mark, scan, decide, carry out: shared by every
agent), ``server`` (aiosmtpd with streaming DATA, DSN, XFORWARD, limits),
``spool`` (DATA into memory or a temporary file), ``esmtp`` (parameters,
XFORWARD, replies), ``handler`` (EHLO and the Message), ``downstream`` (SMTP
re-injection), ``maildir`` (local delivery), ``smtp_filter``, ``smtp_proxy``,
``settings``, ``runner`` (signals and exit status).

SECURITY: see each module.  In short: agents trust nothing from the network,
listen on loopback by default, never scan and never decide themselves, and
answer with a temporary failure whenever they cannot be sure the mail is safe
and kept.
"""

from mailwarden.intercept.downstream import SmtpDownstream, Transaction
from mailwarden.intercept.maildir import MaildirDownstream
from mailwarden.intercept.pipeline import Answer, Pipeline, Scanner, shape
from mailwarden.intercept.server import AgentServer
from mailwarden.intercept.settings import Downstream, SmtpSettings
from mailwarden.intercept.smtp_filter import FilterHandler, run_filter, start_filter
from mailwarden.intercept.smtp_proxy import ProxyHandler, run_proxy, start_proxy

__all__ = [
    "AgentServer",
    "Answer",
    "Downstream",
    "FilterHandler",
    "MaildirDownstream",
    "Pipeline",
    "ProxyHandler",
    "Scanner",
    "SmtpDownstream",
    "SmtpSettings",
    "Transaction",
    "run_filter",
    "run_proxy",
    "shape",
    "start_filter",
    "start_proxy",
]
