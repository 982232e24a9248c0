"""``mailwarden smtp-proxy``: the before-queue filter (Postfix ``smtpd_proxy_filter``).

The MTA's SMTP server relays each client's transaction through the proxy
while the client waits.  MAIL, RCPT and RSET are passed on to the downstream
(the MTA's after-filter SMTP server) as they come, and its replies go back
unchanged, so its recipient checks still apply.  DATA is received here; at
the final dot the shared pipeline runs in before-queue mode with one answer
for the message:

* reject -> the client gets ``554`` now; defer (daemon down, timeout) ->
  ``451``; the downstream transaction is reset, nothing is queued, and no
  bounce is ever generated;
* quarantine or discard -> ``250 2.7.0`` and the downstream transaction is
  reset (the copy is in the quarantine);
* accept or tag -> the (tagged) message is sent to the downstream and its
  reply to the end of DATA is the client's reply.

::

    agent = await start_proxy(settings, config)
    await agent.stop()

SECURITY: as the filter; the downstream connection lives only as long as
the client's session, so nothing from one client's session is reused for
another.
"""

from __future__ import annotations

import logging
from typing import Any

from mailwarden.config import Config
from mailwarden.daemon import AsyncDaemonClient
from mailwarden.intercept.downstream import DownstreamError, DownstreamSession
from mailwarden.intercept.esmtp import MailParams, RcptParams
from mailwarden.intercept.handler import AgentHandler, build_message
from mailwarden.intercept.pipeline import Answer, Pipeline, Scanner
from mailwarden.intercept.runner import run
from mailwarden.intercept.server import AgentEnvelope, AgentServer, AgentSession
from mailwarden.intercept.settings import SmtpSettings
from mailwarden.intercept.smtp_filter import header_host
from mailwarden.policy import Mode

log = logging.getLogger("mailwarden.intercept.smtp_proxy")

_KEY = "downstream"


class ProxyHandler(AgentHandler):
    """aiosmtpd handler of the before-queue proxy."""

    def __init__(
        self, pipeline: Pipeline, settings: SmtpSettings, config_files: list[str] | None = None
    ) -> None:
        self.pipeline = pipeline
        self.settings = settings
        #: the files the configuration came from, read again on SIGHUP
        self.config_files = config_files or []

    def reload(self) -> None:
        self.pipeline.reload_from(self.config_files)

    async def _downstream(self, session: AgentSession) -> DownstreamSession:
        current = session.state.get(_KEY)
        if isinstance(current, DownstreamSession) and current.connected:
            return current
        target = self.settings.downstream
        fresh = DownstreamSession(
            target.host,
            target.port,
            timeout=self.settings.downstream_timeout,
            helo=self.settings.hostname,
        )
        await fresh.open()
        session.state[_KEY] = fresh
        return fresh

    async def handle_MAIL(
        self,
        server: Any,
        session: AgentSession,
        envelope: AgentEnvelope,
        address: str,
        options: list[str],
    ) -> str:
        params = envelope.pending if isinstance(envelope.pending, MailParams) else MailParams()
        try:
            downstream = await self._downstream(session)
            if envelope.xforward and self.settings.xforward and downstream.xforward_attrs:
                await downstream.xforward(envelope.xforward)
            return str(await downstream.mail(address, params))
        except DownstreamError as exc:
            return str(exc.reply)

    async def handle_RCPT(
        self,
        server: Any,
        session: AgentSession,
        envelope: AgentEnvelope,
        address: str,
        options: list[str],
    ) -> str:
        params = envelope.pending if isinstance(envelope.pending, RcptParams) else RcptParams()
        downstream = session.state.get(_KEY)
        if not isinstance(downstream, DownstreamSession):
            return "451 4.4.2 Downstream session lost; try again later"
        try:
            return str(await downstream.rcpt(address, params, utf8=envelope.smtp_utf8))
        except DownstreamError as exc:
            return str(exc.reply)

    async def handle_DATA(self, server: Any, session: AgentSession, envelope: AgentEnvelope) -> str:
        downstream = session.state.get(_KEY)
        message = build_message(envelope, agent="smtp-proxy")
        done = await self.pipeline.process(message, mode=Mode.BEFORE_QUEUE, answer=Answer.ONE_COPY)
        if not isinstance(downstream, DownstreamSession) or not downstream.connected:
            return "451 4.4.2 Downstream session lost; try again later"
        if not done.deliveries:
            await downstream.rset()
            return str(done.action.whole.reply)
        data, _ = done.deliveries[0]
        try:
            return str(await downstream.data(data))
        except DownstreamError as exc:
            return str(exc.reply)

    async def handle_RSET(self, server: Any, session: AgentSession, envelope: Any) -> str:
        downstream = session.state.get(_KEY)
        if isinstance(downstream, DownstreamSession) and downstream.in_transaction:
            await downstream.rset()
        return "250 2.0.0 Ok"

    async def session_closed(self, session: AgentSession) -> None:
        downstream = session.state.pop(_KEY, None)
        if isinstance(downstream, DownstreamSession):
            await downstream.quit()

    async def close(self) -> None:
        scanner = self.pipeline.scanner
        if isinstance(scanner, AsyncDaemonClient):
            await scanner.close()


async def start_proxy(
    settings: SmtpSettings, config: Config, *, scanner: Scanner | None = None
) -> AgentServer:
    """Build the proxy from its settings and start listening."""
    scanner = scanner or AsyncDaemonClient(settings.daemon_socket, timeout=settings.scan_timeout)
    pipeline = Pipeline.from_config(config, scanner, host=header_host(config))
    handler = ProxyHandler(pipeline, settings, list(config.files))
    agent = AgentServer(settings, handler, xforward=settings.xforward)
    await agent.start()
    return agent


def run_proxy(settings: SmtpSettings, config: Config) -> int:
    """The ``mailwarden smtp-proxy`` process: serve until SIGTERM."""
    where = f"{settings.listen_host}:{settings.listen_port} -> {settings.downstream}"
    return run(lambda: start_proxy(settings, config), name="smtp-proxy", where=where, config=config)
