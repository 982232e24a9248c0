"""Run inside a fresh network namespace (``unshare -n``): transparent mode end to end.

Usage (by ``test_transparent.py``)::

    unshare -n python transparent_netns.py ROOT     # prints one JSON line of results

Brings up loopback, has nftables redirect the connections a client makes from
127.0.0.9 to Dovecot's POP3 and IMAP ports to the proxies, which run with
``transparent = true`` and a ``server`` that does not exist: only the
original destination (SO_ORIGINAL_DST) can lead them to Dovecot.

SECURITY: test-only; the firewall rules live and die with the namespace.
"""

from __future__ import annotations

import imaplib
import json
import poplib
import socket
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(HERE))

from intercept.harness import Stack, free_port  # noqa: E402
from support.dovecot import EICAR, PASSWORD, DovecotInstance, login, seed  # noqa: E402

SOURCE = ("127.0.0.9", 0)


class Imap(imaplib.IMAP4):
    def _create_socket(self, timeout: float | None) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout, source_address=SOURCE)


class Pop3(poplib.POP3):
    def _create_socket(self, timeout: float) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout, source_address=SOURCE)


def main(root: Path) -> dict[str, object]:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    dovecot = DovecotInstance.create(root / "dovecot", users={login("alice"): PASSWORD})
    seed(dovecot, "alice")
    proxies = {"pop3": free_port(), "imap": free_port()}
    rules = "".join(
        f"add rule ip mw out ip saddr 127.0.0.9 tcp dport {dovecot.ports[k]} "
        f"redirect to :{proxies[k]}\n"
        for k in proxies
    )
    subprocess.run(
        ["nft", "-f", "-"],
        input="add table ip mw\n"
        "add chain ip mw out { type nat hook output priority -100; }\n" + rules,
        text=True,
        check=True,
    )
    toml = "".join(f'[{k}_proxy]\nserver = "127.0.0.1:1"\ntransparent = true\n' for k in proxies)
    stack = Stack.create(root / "mw", extra_toml=toml)
    result: dict[str, object] = {}
    try:
        dovecot.start()
        stack.start_daemon()
        for kind, port in proxies.items():
            stack.start_agent(kind, f"{kind}-proxy", port)
        imap = Imap("127.0.0.1", dovecot.ports["imap"], timeout=30)
        imap.login(login("alice"), PASSWORD)
        imap.select("INBOX", readonly=True)
        _, clean = imap.uid("FETCH", "1", "(BODY.PEEK[])")
        _, infected = imap.uid("FETCH", "2", "(BODY.PEEK[])")
        imap.logout()
        result["imap_clean"] = b"clean message 1" in clean[0][1]  # type: ignore[index]
        result["imap_replaced"] = (
            EICAR not in infected[0][1] and b"X-Virus-Status" in infected[0][1]
        )  # type: ignore[index,operator]
        pop = Pop3("127.0.0.1", dovecot.ports["pop3"], timeout=30)
        pop.user(login("alice"))
        pop.pass_(PASSWORD)
        data = b"\r\n".join(pop.retr(2)[1])
        pop.quit()
        result["pop3_replaced"] = EICAR not in data and b"X-Virus-Status" in data
        result["proxied"] = all("logged in" in stack.procs[k].output() for k in proxies)
    finally:
        stack.stop_all()
        dovecot.stop()
    return result


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
