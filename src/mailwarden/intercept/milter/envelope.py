"""The Message envelope from what the MTA told the milter: CONNECT, HELO, MAIL, RCPT, macros.

The session keeps the macros it was sent, stage by stage, in a
:class:`Macros`; :func:`build_envelope` turns them and the commands'
arguments into the :class:`~mailwarden.message.Envelope` contract::

    macros.update("C", {"{daemon_name}": "smtpd", "j": "mx.example.org"})
    envelope = build_envelope(facts, macros, network=policy.network,
                              submission_daemons=("MSA",))

Direction comes from the macros, as the policy's ``classify`` reads them:

* ``{auth_authen}`` (the SASL login) becomes ``auth_user``: mail from a
  logged-in client is outbound unless every recipient is local;
* the client address (CONNECT, else ``{client_addr}``) is compared with
  ``[network] trusted_networks`` by the policy;
* ``{daemon_name}`` in ``[milter] submission_daemons`` (Sendmail's ``MSA``,
  a Postfix submission service's ``-o milter_macro_daemon_name=...``) is
  treated like a login: the port alone says the client is one of ours.

SECURITY: macros are believed because only the MTA can reach the milter
socket; the sender address is never a reason to trust anything.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from mailwarden.message import Envelope, Point
from mailwarden.policy import Network, classify

#: where macros may be looked up, most specific (end of message) first
_ORDER = ("E", "N", "T", "R", "M", "H", "C")
#: stages whose macros belong to one message: forgotten at ABORT and after EOM
MESSAGE_STAGES = frozenset({"M", "R", "T", "L", "N", "B", "E"})


class Macros:
    """Macro values by stage (the command letter they were sent with)."""

    def __init__(self) -> None:
        self._stages: dict[str, dict[str, str]] = {}

    def update(self, stage: str, values: dict[str, str]) -> None:
        self._stages.setdefault(stage, {}).update(values)

    def get(self, name: str) -> str | None:
        """The latest value of ``name``; ``{x}`` and ``x`` name the same macro."""
        bare = name.strip("{}")
        for stage in (*_ORDER, *self._stages):
            values = self._stages.get(stage)
            if not values:
                continue
            for key in (name, bare, "{" + bare + "}"):
                if key in values:
                    return values[key]
        return None

    def forget_message(self) -> None:
        for stage in MESSAGE_STAGES:
            self._stages.pop(stage, None)

    def clear(self) -> None:
        self._stages.clear()

    def size(self) -> int:
        return sum(len(k) + len(v) for values in self._stages.values() for k, v in values.items())


@dataclass
class Facts:
    """What the commands themselves said, per connection and per message."""

    client_name: str | None = None
    client_address: str | None = None
    helo: str | None = None
    sender: str = ""
    recipients: list[str] = field(default_factory=list)


def build_envelope(
    facts: Facts,
    macros: Macros,
    *,
    network: Network,
    submission_daemons: tuple[str, ...] = (),
) -> Envelope:
    """The envelope of the message that just ended; see the module documentation."""
    address = facts.client_address or macros.get("{client_addr}") or None
    envelope = Envelope(
        sender=unbracket(facts.sender),
        recipients=tuple(unbracket(r) for r in facts.recipients),
        client_address=address,
        client_name=facts.client_name or macros.get("{client_name}") or None,
        helo=facts.helo,
        auth_user=macros.get("{auth_authen}") or None,
        queue_id=macros.get("i") or None,
        point=Point.MTA,
        agent="milter",
    )
    daemon = macros.get("{daemon_name}")
    if daemon and daemon in submission_daemons and not envelope.auth_user:
        # judged as a login would be, but the envelope keeps saying nobody logged in
        as_login = dataclasses.replace(envelope, auth_user=f"(daemon {daemon})")
        envelope = dataclasses.replace(envelope, direction=classify(as_login, network))
    return envelope


def unbracket(address: str) -> str:
    """``<a@b>`` -> ``a@b``; ``<>`` -> ``""``."""
    text = address.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    return text
