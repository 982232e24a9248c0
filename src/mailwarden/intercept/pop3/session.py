"""One POP3 client session relayed to the real server, with every retrieval scanned.

The proxy reads the client's commands one at a time (pipelined commands
simply wait in the buffer) and relays each to the server, except:

* ``RETR n``: the message is read whole, scanned (:class:`DownloadScanner`,
  keyed by user and UIDL), and the client gets the server's response byte
  for byte when it is clean, the replacement with its own octet count when
  it is not, ``-ERR [SYS/TEMP]`` when it could not be scanned;
* ``TOP n k``: the whole message is read with ``TOP n 999999999`` (which,
  unlike RETR, leaves the \\Seen flag alone), scanned, and the client gets
  the server's own answer to ``TOP n k`` when clean, or the top of the
  replacement;
* ``LIST``/``STAT``: sizes of messages whose replacement differs in size
  from the original are corrected (``UIDL`` is unchanged: the replacement
  stands for the same message);
* ``CAPA``, ``STLS``: TLS towards the client is the proxy's (its own
  certificate); the server's STLS is never offered through;
* ``USER``/``PASS``, ``APOP``, ``AUTH PLAIN``/``LOGIN``: relayed, and the
  login name is remembered once the server accepts it, for per-user policy;
* ``DELE n`` of a message the proxy deleted itself (``infected_original =
  "delete"``) is answered by the proxy.

SECURITY: both sides are untrusted.  Command lines are bounded (RFC 2449's
255 octets, with room), responses by ``max_message_size``; a client that
stays silent past ``timeout`` is dropped; nothing of a message reaches the
client before its verdict, and a message over the limit or whose scan
failed is never sent.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mailwarden.intercept.download import (
    Kind,
    Served,
    upgrade_server,
)
from mailwarden.intercept.download.login import sasl_user
from mailwarden.intercept.download.serve import ProxyProtocol
from mailwarden.intercept.download.session import ProxySession
from mailwarden.intercept.pop3.codec import (
    Pop3Error,
    TooLarge,
    filter_capa,
    ok,
    parse_listing,
    read_multiline,
    split_lines,
    stuff,
    top,
    unstuff,
)

log = logging.getLogger("mailwarden.intercept.pop3")

MAX_COMMAND = 1024
#: what TOP asks for to read a whole message without marking it seen
_ALL_LINES = b"999999999"


class Pop3Session(ProxySession):
    """See the module documentation."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending_user: str | None = None
        self._uidls: dict[int, bytes] | None = None
        #: messages the proxy itself deleted on the server (infected_original = delete)
        self._deleted: set[int] = set()

    # --- plumbing -----------------------------------------------------------------

    async def _server_line(self) -> bytes:
        line = await asyncio.wait_for(self.reader.readline(), self.settings.server_timeout)
        if not line.endswith(b"\n"):
            raise Pop3Error("the server closed the connection")
        if len(line) > 64 * 1024:
            raise Pop3Error("over-long status line from the server")
        return line

    async def _multiline(self) -> bytes:
        return await read_multiline(
            self.reader,
            limit=self.settings.max_message_size,
            timeout=self.settings.server_timeout,
        )

    async def _ask(self, command: bytes) -> bytes:
        self.writer.write(command + b"\r\n")
        await self.writer.drain()
        return await self._server_line()

    async def _client_line(self) -> bytes:
        try:
            line = await asyncio.wait_for(
                self.client.reader.readuntil(b"\n"), self.settings.timeout
            )
        except asyncio.LimitOverrunError:
            raise Pop3Error("over-long command line from the client") from None
        except asyncio.IncompleteReadError:
            return b""
        if len(line) > MAX_COMMAND:
            raise Pop3Error("over-long command line from the client")
        return line

    # --- the session ----------------------------------------------------------------

    unreachable = b"-ERR [SYS/TEMP] The mail server is not reachable\r\n"
    broken = b"-ERR [SYS/TEMP] Proxy error, closing the connection\r\n"
    errors = (Pop3Error,)

    async def _greet(self) -> None:
        greeting = await self._server_line()
        if self.settings.server_tls == "starttls":
            if not ok(await self._ask(b"STLS")):
                raise Pop3Error("the server refused STLS")
            await upgrade_server(self.settings, self.reader, self.writer, self.server_tls)
        await self._send(greeting)

    async def _command(self, line: bytes) -> bool:
        """Handle one client command; False once the session is over."""
        words = line.split()
        verb = words[0].upper() if words else b""
        args = words[1:]
        if verb == b"RETR" and len(args) == 1 and args[0].isdigit():
            await self._retr(int(args[0]))
        elif verb == b"TOP" and len(args) == 2 and all(a.isdigit() for a in args):
            await self._top(int(args[0]), int(args[1]))
        elif verb in (b"LIST", b"STAT"):
            await self._sizes(verb, line, args)
        elif verb == b"CAPA":
            await self._capa(line)
        elif verb == b"STLS":
            await self._stls()
        elif verb == b"AUTH":
            await self._auth(line, args)
        elif (
            verb == b"DELE"
            and len(args) == 1
            and args[0].isdigit()
            and int(args[0]) in self._deleted
        ):
            await self._send(b"+OK Marked to be deleted.\r\n")
        else:
            status = await self._ask(line.rstrip(b"\r\n"))
            if verb == b"USER" and args:
                self._pending_user = args[0].decode("utf-8", "replace")
            elif verb == b"PASS" and ok(status) and self._pending_user:
                self._logged_in(self._pending_user)
            elif verb == b"APOP" and ok(status) and args:
                self._logged_in(args[0].decode("utf-8", "replace"))
            elif verb == b"RSET" and ok(status):
                await self._delete_again()
            multiline = ok(status) and (verb == b"UIDL" and not args)
            await self._send(status + (await self._multiline() if multiline else b""))
            if verb == b"QUIT":
                return False
        return True

    # --- retrieval --------------------------------------------------------------------

    async def _uidl(self, n: int) -> bytes | None:
        """Message ``n``'s UIDL (asked once per session; not before the server answers
        UIDL, which it refuses before login)."""
        if self._uidls is None:
            status = await self._ask(b"UIDL")
            if not ok(status):
                return None
            self._uidls = parse_listing(split_lines(await self._multiline()))
        return self._uidls.get(n)

    async def _fetch(self, n: int, *, whole: bytes) -> tuple[bytes, bytes, Served] | bytes:
        """(status line, body as sent, what to serve) for message ``n``, or the
        line to answer the client with when there is no message to serve."""
        uidl = await self._uidl(n)
        status = await self._ask(whole)
        if not ok(status):
            return status
        try:
            body = await self._multiline()
        except TooLarge as exc:
            return b"", b"", Served(Kind.FAILED, reason=str(exc))
        key = (self.user, uidl.decode("ascii", "replace")) if uidl else None
        ref = f"pop3:{self.user}:{uidl.decode('ascii', 'replace') if uidl else n}"
        served = await self.scanner.check(
            unstuff(body), user=self.user, key=key, client=self.client.address, ref=ref
        )
        delete = self.settings.infected_original == "delete"
        if served.warned and delete and ok(await self._ask(b"DELE %d" % n)):
            self._deleted.add(n)
        return status, body, served

    def _failed(self, n: int, served: Served) -> bytes:
        log.warning("message %d for %s not served: %s", n, self.user, served.reason)
        return b"-ERR [SYS/TEMP] Message %d could not be scanned; try again later\r\n" % n

    async def _retr(self, n: int) -> None:
        got = await self._fetch(n, whole=b"RETR %d" % n)
        if isinstance(got, bytes):
            await self._send(got)
            return
        status, body, served = got
        if served.kind is Kind.CLEAN:
            await self._send(status + body)
        elif served.kind is Kind.REPLACED and served.data is not None:
            await self._send(b"+OK %d octets\r\n" % len(served.data) + stuff(served.data))
        else:
            await self._send(self._failed(n, served))

    async def _top(self, n: int, lines: int) -> None:
        uidl = await self._uidl(n)
        hit = self.scanner.cached((self.user, uidl.decode("ascii", "replace"))) if uidl else None
        if hit is None or hit.kind is not Kind.CLEAN:
            got = await self._fetch(n, whole=b"TOP %d %s" % (n, _ALL_LINES))
            if isinstance(got, bytes):
                await self._send(got)
                return
            hit = got[2]
        if hit.kind is Kind.CLEAN:
            status = await self._ask(b"TOP %d %d" % (n, lines))
            await self._send(status + (await self._multiline() if ok(status) else b""))
        elif hit.kind is Kind.REPLACED and hit.data is not None:
            await self._send(b"+OK\r\n" + stuff(top(hit.data, lines)))
        else:
            await self._send(self._failed(n, hit))

    # --- sizes, capabilities, TLS, authentication ------------------------------------------

    def _replaced_size(self, n: int, size: int) -> int:
        uidl = (self._uidls or {}).get(n)
        if uidl is None:
            return size
        hit = self.scanner.cached((self.user, uidl.decode("ascii", "replace")))
        if hit is not None and hit.kind is Kind.REPLACED and hit.data is not None:
            return len(hit.data)
        return size

    async def _sizes(self, verb: bytes, line: bytes, args: list[bytes]) -> None:
        if self.user is not None:
            await self._uidl(0)  # the map, for the cache lookups below
        if verb == b"LIST" and args:
            status = await self._ask(line.rstrip(b"\r\n"))
            parts = status.split()
            if ok(status) and len(parts) >= 3 and parts[1].isdigit() and parts[2].isdigit():
                size = self._replaced_size(int(parts[1]), int(parts[2]))
                if size != int(parts[2]):
                    status = b"+OK %s %d\r\n" % (parts[1], size)
            await self._send(status)
            return
        if verb == b"STAT":
            status = await self._ask(b"STAT")
            parts = status.split()
            if ok(status) and len(parts) >= 3 and parts[1].isdigit() and parts[2].isdigit():
                listing = await self._listing()
                delta = sum(self._replaced_size(n, s) - s for n, s in listing.items())
                if delta:
                    status = b"+OK %s %d\r\n" % (parts[1], int(parts[2]) + delta)
            await self._send(status)
            return
        status = await self._ask(b"LIST")
        if not ok(status):
            await self._send(status)
            return
        body = await self._multiline()
        sizes = {n: int(v) for n, v in parse_listing(split_lines(body)).items() if v.isdigit()}
        if all(self._replaced_size(n, s) == s for n, s in sizes.items()):
            await self._send(status + body)
            return
        out = [b"%d %d\r\n" % (n, self._replaced_size(n, s)) for n, s in sizes.items()]
        await self._send(status + b"".join(out) + b".\r\n")

    async def _listing(self) -> dict[int, int]:
        status = await self._ask(b"LIST")
        if not ok(status):
            return {}
        listing = parse_listing(split_lines(await self._multiline()))
        return {n: int(v) for n, v in listing.items() if v.isdigit()}

    async def _capa(self, line: bytes) -> None:
        status = await self._ask(line.rstrip(b"\r\n"))
        if not ok(status):
            await self._send(status)
            return
        lines = split_lines(await self._multiline())
        stls = self.client_tls is not None and not self.client.tls
        await self._send(status + b"".join(filter_capa(lines, stls=stls)) + b".\r\n")

    async def _stls(self) -> None:
        if self.client_tls is None or self.client.tls:
            await self._send(b"-ERR TLS is not available\r\n")
            return
        await self._send(b"+OK Begin TLS negotiation now.\r\n")
        await self.client.start_tls(self.client_tls)

    async def _auth(self, line: bytes, args: list[bytes]) -> None:
        status = await self._ask(line.rstrip(b"\r\n"))
        if not args:
            await self._send(status + (await self._multiline() if ok(status) else b""))
            return
        answers = [args[1]] if len(args) > 1 else []
        while status.startswith(b"+ ") or status.rstrip() == b"+":
            await self._send(status)
            reply = await self._client_line()
            if not reply:
                raise Pop3Error("the client left during authentication")
            answers.append(reply.strip())
            status = await self._ask(reply.rstrip(b"\r\n"))
        if ok(status):
            name = sasl_user(args[0], answers)
            if name:
                self._logged_in(name)
        await self._send(status)

    async def _delete_again(self) -> None:
        # RSET undid the proxy's own deletions too; the replaced originals stay marked
        for n in sorted(self._deleted):
            await self._ask(b"DELE %d" % n)


#: how ``mailwarden pop3-proxy`` starts (``download.serve``)
POP3 = ProxyProtocol(
    "pop3-proxy", Pop3Session, busy=b"-ERR [SYS/TEMP] Too many sessions, try again later\r\n"
)
