"""What every SMTP agent's aiosmtpd handler shares: the EHLO reply and the Message.

:class:`AgentHandler` is the base of the filter's and the proxy's handlers;
:func:`build_message` turns what the session learned (envelope, XFORWARD)
into the :class:`~mailwarden.message.Message` contract::

    message = build_message(envelope, agent="smtp-filter")

Client information comes from XFORWARD only: the agent's own peer is the MTA,
never the original client, and XFORWARD_README forbids mixing the two.  A
protocol name ending in ``A`` (ESMTPA, ESMTPSA) means the client logged in
with SASL; without XFORWARD the direction is judged from the recipients only.

SECURITY: XFORWARD values are believed because only the MTA can connect
(loopback by default); they are validated by ``esmtp.parse_xforward``.
"""

from __future__ import annotations

from typing import Any

from mailwarden.intercept.esmtp import is_authenticated_proto
from mailwarden.intercept.server import AgentEnvelope
from mailwarden.message import Envelope, Message, Point

#: ``auth_user`` for a SASL login the MTA reported through XFORWARD PROTO; the
#: login name itself is not forwarded
AUTHENTICATED = "(sasl)"
#: a client address standing for mail submitted on the MTA's own host
#: (XFORWARD SOURCE=LOCAL without ADDR: the sendmail command, pickup)
LOCAL_SUBMISSION = "127.0.0.1"


class AgentHandler:
    """aiosmtpd hooks common to the SMTP agents."""

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        extra = [f"250-{word}" for word in server.extensions()]
        return [*responses[:-1], *extra, responses[-1]]


def build_message(envelope: AgentEnvelope, *, agent: str) -> Message:
    """The Message for the transaction that just received its DATA."""
    if envelope.spool is None:
        raise RuntimeError("no message data in this transaction")
    raw = envelope.spool.getvalue()
    # one copy in memory is enough from here on
    envelope.spool.discard()
    xf = envelope.xforward
    address = xf.get("ADDR")
    if address is None and (xf.get("SOURCE") or "").upper() == "LOCAL":
        address = LOCAL_SUBMISSION
    if address and address[:5].upper() == "IPV6:":
        address = address[5:]
    return Message(
        raw,
        Envelope(
            sender=envelope.mail_from or "",
            recipients=tuple(envelope.rcpt_tos),
            client_address=address,
            client_name=xf.get("NAME"),
            helo=xf.get("HELO"),
            auth_user=AUTHENTICATED if is_authenticated_proto(xf.get("PROTO")) else None,
            queue_id=xf.get("IDENT"),
            point=Point.MTA,
            agent=agent,
        ),
    )
