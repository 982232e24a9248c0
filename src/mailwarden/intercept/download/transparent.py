"""Transparent mode: the address a redirected client meant to reach (``SO_ORIGINAL_DST``).

::

    target = original_destination(sock)    # ("192.0.2.10", 143), or None

When the firewall redirects a client's connection to the proxy (nftables
``redirect``, iptables ``REDIRECT``), Linux keeps the destination it had
before the rewrite for the accepted socket; with ``transparent = true`` the
proxy connects there instead of ``server``.  A connection that was not
redirected reports the proxy's own address, which is answered with None
(the proxy then uses ``server``: connecting to itself would loop).

SECURITY: the value comes from the kernel's connection tracking, not from
the client.  IPv4 only (``SOL_IP``); an IPv6 connection gives None.
"""

from __future__ import annotations

import socket
import struct

#: from <linux/netfilter_ipv4.h>
SO_ORIGINAL_DST = 80


def original_destination(sock: socket.socket | None) -> tuple[str, int] | None:
    """Where the client connected before a REDIRECT; None when not redirected or unknown."""
    if sock is None or sock.family != socket.AF_INET:
        return None
    try:
        raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    except OSError:
        return None
    port = struct.unpack("!H", raw[2:4])[0]
    address = socket.inet_ntoa(raw[4:8])
    if (address, port) == sock.getsockname()[:2]:
        return None
    return address, port
