"""Direction: is a message inbound (to our users) or outbound (from them)?

:func:`classify` is pure: it reads the envelope an agent built and the
``[network]`` settings, compiled once into a :class:`Network`::

    network = Network.from_config(config)
    direction = classify(message.envelope, network)

Rules, first match wins:

1. a direction the agent already knows from where it sits (``mda`` is always
   inbound) is kept; so is the point: S2 and S4 are inbound, S3 outbound;
2. mail from a trusted source, a SASL-authenticated sender (``auth_user``,
   from the milter macros or the proxy's AUTH) or a client in
   ``trusted_networks``, is outbound when any recipient is outside
   ``local_domains``, and inbound when all are local;
3. without any client information (the command line), mail to local
   recipients only is inbound, anything else unknown;
4. everything else is inbound.

SECURITY: the envelope is untrusted.  The sender address is never a reason
to trust a message (it is forged at will); only the client address the MTA
saw and an authenticated login are.  An unparsable client address is not
trusted.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from mailwarden.message import Direction, Envelope, Point

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Network:
    """Compiled ``[network]`` settings."""

    local_domains: tuple[str, ...] = ()
    trusted_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_values(cls, section: dict[str, Any]) -> Network:
        return cls(
            local_domains=tuple(d.lower().rstrip(".") for d in section["local_domains"]),
            trusted_networks=tuple(
                ipaddress.ip_network(n, strict=False) for n in section["trusted_networks"]
            ),
        )

    def is_local(self, address: str) -> bool:
        """Whether ``address`` (user@domain) is in one of the local domains."""
        domain = domain_of(address)
        return bool(domain) and any(domain_matches(domain, p) for p in self.local_domains)

    def is_trusted(self, client_address: str | None) -> bool:
        ip = parse_client_address(client_address)
        if ip is None:
            return False
        candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        return any(c in net for c in candidates for net in self.trusted_networks)


def classify(envelope: Envelope, network: Network) -> Direction:
    """Inbound, outbound or unknown; see the module documentation for the rules."""
    if envelope.direction is not Direction.UNKNOWN:
        return envelope.direction
    if envelope.point in (Point.MDA, Point.DOWNLOAD):
        return Direction.INBOUND
    if envelope.point is Point.OUTBOUND:
        return Direction.OUTBOUND
    all_local = bool(envelope.recipients) and all(network.is_local(r) for r in envelope.recipients)
    if envelope.auth_user or network.is_trusted(envelope.client_address):
        return Direction.INBOUND if all_local else Direction.OUTBOUND
    if envelope.client_address is None:
        return Direction.INBOUND if all_local else Direction.UNKNOWN
    return Direction.INBOUND


def parse_client_address(
    value: str | None,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``1.2.3.4``, ``[1.2.3.4]``, ``IPv6:::1`` or ``fe80::1%eth0`` -> address; else None."""
    if not value:
        return None
    text = value.strip().strip("[]")
    if text[:5].lower() == "ipv6:":
        text = text[5:]
    text = text.split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def normalize_address(address: str) -> str:
    """Lower-case an envelope address and drop the angle brackets some agents keep."""
    return address.strip().strip("<>").strip().lower()


def domain_of(address: str) -> str:
    _, at, domain = normalize_address(address).rpartition("@")
    return domain.rstrip(".") if at else ""


def domain_matches(domain: str, pattern: str) -> bool:
    """``example.org`` matches itself; ``.example.org`` also matches its subdomains."""
    if pattern.startswith("."):
        base = pattern[1:]
        return domain == base or domain.endswith(pattern)
    return domain == pattern
