"""One IMAP client session relayed to the real server, with every content fetch scanned.

Commands are relayed one at a time: the next is read only after the
server's tagged answer to the previous one (pipelined commands wait in the
buffer), so every response belongs to a known command.  Literals flow in
both directions as sent: a synchronizing ``{n}`` from the client waits for
the server's ``+``, ``{n+}`` (LITERAL+) goes straight through.  A ``+``
from the server outside a literal (IDLE, AUTHENTICATE) lets one client
line through, read while the server's responses keep flowing.

FETCH and UID FETCH that ask for content (``BODY[...]``, ``BINARY[...]``,
``RFC822*``, partials ``<o.n>`` included) are rewritten to also fetch
``BODY.PEEK[]`` (and the UID): each FETCH response is then complete, the
whole message is scanned once (cached by user, mailbox, UIDVALIDITY and
UID), and the client gets the items it asked for: the server's own bytes
for a clean message, the same items cut from the warning otherwise
(RFC822.SIZE, BODYSTRUCTURE and literal sizes follow).  A message that
cannot be scanned is left out of the answer, whose tagged OK becomes
``NO [UNAVAILABLE]``.  A FETCH response with content but without the whole
message (unsolicited) loses its content items.

Capabilities the proxy cannot honour are removed wherever the server lists
them (CAPABILITY responses and ``[CAPABILITY ...]`` codes): COMPRESS=*
(the proxy must read the stream), NOTIFY, URLAUTH and URL-PARTIAL, PREVIEW
and SNIPPET (content outside FETCH), STARTTLS (the proxy's own, offered
with a certificate); the matching commands get ``NO``.

SECURITY: both sides are untrusted.  Client lines are bounded, server
responses by ``max_message_size`` (a larger one ends the session: the
stream cannot be trusted any more); a silent client is dropped after
``timeout``; content reaches the client only through :meth:`_fetch_response`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
from typing import Any

from mailwarden.intercept.download import (
    Kind,
    Served,
    sasl_user,
    upgrade_server,
)
from mailwarden.intercept.download.serve import ProxyProtocol
from mailwarden.intercept.download.session import ProxySession
from mailwarden.intercept.imap.fetch import (
    FULL,
    FetchCommand,
    FetchResponse,
    compose_fetch,
    is_content,
    parse_fetch,
    parse_fetch_command,
    partial,
)
from mailwarden.intercept.imap.sections import item_value
from mailwarden.intercept.imap.wire import (
    ImapError,
    astring,
    literal_at_end,
    read_line,
    read_response,
)

log = logging.getLogger("mailwarden.intercept.imap")

MAX_COMMAND_LINE = 64 * 1024
#: bytes of a command kept to find the login name (literals beyond are streamed only)
_KEEP = 8192
_DROP_CAPS = re.compile(
    rb"^(?:COMPRESS=.*|NOTIFY|URLAUTH.*|URL-PARTIAL|PREVIEW.*|SNIPPET=.*|STARTTLS|LOGINDISABLED)$",
    re.IGNORECASE,
)
_CAPS_CODE = re.compile(rb"\[CAPABILITY ([^\]]*)\]", re.IGNORECASE)
_CAPS_LINE = re.compile(rb"^\* CAPABILITY (.*?)\r?\n$", re.IGNORECASE | re.DOTALL)
_UIDVALIDITY = re.compile(rb"^\* OK \[UIDVALIDITY (\d+)\]", re.IGNORECASE)
_REFUSED = {b"COMPRESS", b"NOTIFY", b"URLFETCH", b"GENURLAUTH", b"RESETKEY"}


class ImapSession(ProxySession):
    """See the module documentation."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: the selected mailbox and its UIDVALIDITY, for the cache key
        self.mailbox: bytes | None = None
        self.uidvalidity: int | None = None
        self._selecting: bytes | None = None
        self._pending_validity: int | None = None
        #: the name in a LOGIN, the mechanism and initial answer of an AUTHENTICATE
        self._login_name: str | None = None
        self._sasl: tuple[bytes, list[bytes]] = (b"", [])

    # --- plumbing -------------------------------------------------------------------

    async def _to_server(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def _response(self) -> bytes:
        raw = await read_response(
            self.reader,
            limit=self.settings.max_message_size + 64 * 1024,
            timeout=self.settings.server_timeout,
        )
        if not raw:
            raise ImapError("the server closed the connection")
        return raw

    async def _client_line(self) -> bytes:
        line = await read_line(self.client.reader, self.settings.timeout)
        if len(line) > MAX_COMMAND_LINE:
            raise ImapError("over-long command line from the client")
        return line

    # --- the session ------------------------------------------------------------------

    unreachable = b"* BYE [UNAVAILABLE] The mail server is not reachable\r\n"
    broken = b"* BYE [UNAVAILABLE] Proxy error, closing the connection\r\n"
    errors = (ImapError,)
    server_limit = MAX_COMMAND_LINE

    async def _greet(self) -> None:
        greeting = await self._response()
        if self.settings.server_tls == "starttls":
            await self._to_server(b"mw0 STARTTLS\r\n")
            while not (answer := await self._response()).startswith(b"mw0 "):
                pass
            if not answer.upper().startswith(b"MW0 OK"):
                raise ImapError("the server refused STARTTLS")
            await upgrade_server(self.settings, self.reader, self.writer, self.server_tls)
            # what it announced before TLS no longer holds
            greeting = _CAPS_CODE.sub(b"", greeting).replace(b"* OK  ", b"* OK ")
        if greeting.upper().startswith(b"* PREAUTH"):
            self.user = "preauth"
        await self._send(self._filter_caps(greeting))

    async def _command(self, line: bytes) -> bool:
        """Handle one client command; False once the session is over."""
        words = line.split(None, 3)
        if len(words) < 2:
            await self._send(b"* BAD Missing tag or command\r\n")
            return True
        tag, verb = words[0], words[1].upper()
        if verb == b"UID" and len(words) > 2:
            verb = b"UID " + words[2].upper()
        if verb == b"STARTTLS":
            return await self._starttls(tag)
        if verb in _REFUSED or verb == b"UID URLFETCH":
            await self._send(tag + b" NO [CANNOT] Not available through this proxy\r\n")
            return True
        if verb in (b"FETCH", b"UID FETCH"):
            command = None
            if literal_at_end(line) is None:
                with contextlib.suppress(ImapError):
                    command = parse_fetch_command(line)
            if command is None:
                await self._send(tag + b" BAD FETCH not understood by the proxy\r\n")
                # a non-synchronizing literal follows: the stream is out of step
                literal = literal_at_end(line)
                return literal is None or literal[1]
            if command.content and self._all_cached(command):
                # every message has its verdict: the server's answer needs no whole copy
                await self._to_server(line)
                return await self._responses(tag, dataclasses.replace(command, cached=True))
            if command.content or (command.sizes and command.added()):
                await self._to_server(command.rewritten())
                return await self._responses(tag, command)
            if command.sizes:
                await self._to_server(line)
                return await self._responses(tag, command)
        if verb in (b"SELECT", b"EXAMINE"):
            self._selecting = line
            self._pending_validity = None
        whole = await self._forward(tag, line)
        if whole is None:
            return True
        if verb == b"LOGIN":
            name = _first_argument(whole)
            self._login_name = name.decode("utf-8", "replace") if name is not None else None
        elif verb == b"AUTHENTICATE":
            parts = whole.split()
            self._sasl = (parts[2] if len(parts) > 2 else b"", parts[3:4])
        return await self._responses(tag, None, verb=verb)

    async def _forward(self, tag: bytes, line: bytes) -> bytes | None:
        """Relay a command with its literals; the first ``_KEEP`` bytes of it, or None
        when the server ended the command before its literal."""
        kept = bytearray(line[:_KEEP])
        await self._to_server(line)
        while (literal := literal_at_end(line)) is not None:
            size, sync = literal
            if sync:
                while True:
                    answer = await self._response()
                    if answer.startswith(b"+"):
                        await self._send(answer)
                        break
                    if answer.startswith(tag + b" "):
                        await self._send(answer)
                        return None
                    await self._send(await self._untagged(answer, None))
            remaining = size
            while remaining:
                chunk = await asyncio.wait_for(
                    self.client.reader.read(min(remaining, 256 * 1024)), self.settings.timeout
                )
                if not chunk:
                    raise ImapError("the client left inside a literal")
                remaining -= len(chunk)
                if len(kept) < _KEEP:
                    kept += chunk[: _KEEP - len(kept)]
                await self._to_server(chunk)
            line = await self._client_line()
            if not line:
                raise ImapError("the client left inside a command")
            if len(kept) < _KEEP:
                kept += line[: _KEEP - len(kept)]
            await self._to_server(line)
        return bytes(kept)

    async def _responses(
        self, tag: bytes, command: FetchCommand | None, *, verb: bytes = b""
    ) -> bool:
        """Relay the server's responses up to the tagged one; False after BYE/LOGOUT."""
        failed: list[int] = []
        pending: asyncio.Task[None] | None = None
        answers: list[bytes] = []
        try:
            while True:
                raw = await self._response()
                if raw.startswith(b"+"):
                    await self._send(raw)
                    if pending is not None and not pending.done():
                        continue
                    pending = asyncio.create_task(self._one_client_line(answers))
                    continue
                if raw.startswith(tag + b" "):
                    await self._send(self._tagged(raw, verb, failed, answers))
                    return verb != b"LOGOUT"
                if raw[:2] == b"* ":
                    out = await self._untagged(raw, command, failed)
                    if out:
                        await self._send(out)
                    if raw[2:5].upper() == b"BYE" and verb != b"LOGOUT":
                        return False
                    continue
                await self._send(raw)
        finally:
            if pending is not None and not pending.done():
                pending.cancel()

    async def _one_client_line(self, answers: list[bytes]) -> None:
        """After a server ``+``: one line from the client (IDLE's DONE, a SASL answer)."""
        try:
            line = await self._client_line()
        except ImapError:
            line = b""
        if not line:
            self.writer.close()  # the client left: end the server side too
            return
        answers.append(line.strip())
        await self._to_server(line)

    # --- responses ----------------------------------------------------------------------

    def _tagged(self, raw: bytes, verb: bytes, failed: list[int], answers: list[bytes]) -> bytes:
        ok = raw.split(b" ", 2)[1:2] == [b"OK"] or raw.split(b" ", 2)[1:2] == [b"ok"]
        if verb in (b"SELECT", b"EXAMINE"):
            if ok and self._selecting is not None:
                self.mailbox = _first_argument(self._selecting)
                self.uidvalidity = self._pending_validity
            else:
                self.mailbox = self.uidvalidity = None
            self._selecting = None
        elif verb in (b"CLOSE", b"UNSELECT") and ok:
            self.mailbox = self.uidvalidity = None
        elif verb == b"LOGIN" and ok:
            self._logged_in(self._login_name)
        elif verb == b"AUTHENTICATE" and ok:
            mechanism, initial = self._sasl
            self._logged_in(sasl_user(mechanism, [*initial, *answers]))
        if failed and ok:
            tag = raw.split(b" ", 1)[0]
            numbers = b",".join(b"%d" % n for n in failed)
            log.warning("messages %s for %s not served", numbers.decode(), self.user)
            return (
                tag
                + b" NO [UNAVAILABLE] Message(s) %s could not be scanned; try again later\r\n"
                % numbers
            )
        return self._filter_caps(raw)

    async def _untagged(
        self, raw: bytes, command: FetchCommand | None, failed: list[int] | None = None
    ) -> bytes:
        match = _UIDVALIDITY.match(raw)
        if match and self._selecting is not None:
            self._pending_validity = int(match.group(1))
        if _CAPS_LINE.match(raw) or _CAPS_CODE.search(raw):
            return self._filter_caps(raw)
        if b" FETCH " not in raw[:24].upper():
            return raw
        fetch = parse_fetch(raw)
        if fetch is None:
            return raw
        return await self._fetch_response(raw, fetch, command, failed if failed is not None else [])

    async def _fetch_response(
        self, raw: bytes, fetch: FetchResponse, command: FetchCommand | None, failed: list[int]
    ) -> bytes:
        """What the client gets for one FETCH response; see the module documentation."""
        added = set(command.added()) if command is not None else set()
        drop = {b"BODY[]"} if b"BODY.PEEK[]" in added else set()
        if b"UID" in added:
            drop.add(b"UID")
        if not any(is_content(i.label) for i in fetch.items):
            return self._known(raw, fetch, command, drop)
        full = next((i for i in fetch.items if i.key in FULL), None)
        if full is None:
            known = self._cached(fetch)
            if known is not None and known.kind is not Kind.FAILED:
                return self._serve(raw, fetch, command, drop, known)
            log.warning("FETCH response with content but no whole message: content removed")
            kept = [(i.label, i.value) for i in fetch.items if not is_content(i.label)]
            return compose_fetch(fetch.seq, kept)
        data = _string_value(full.value)
        uid_item = fetch.get(b"UID")
        uid = int(uid_item.value) if uid_item is not None and uid_item.value.isdigit() else None
        key = None
        if uid is not None and self.uidvalidity is not None and self.mailbox is not None:
            key = (self.user, self.mailbox, self.uidvalidity, uid)
        served: Served
        if data is None:
            served = Served(Kind.FAILED, reason="unreadable message data")
        else:
            served = await self.scanner.check(
                data,
                user=self.user,
                key=key,
                client=self.client.address,
                ref=f"imap:{self.user}:{(self.mailbox or b'').decode('utf-8', 'replace')}:{uid}",
            )
        if served.kind is Kind.FAILED:
            failed.append(fetch.seq)
            return b""
        return self._serve(raw, fetch, command, drop, served)

    def _serve(
        self,
        raw: bytes,
        fetch: FetchResponse,
        command: FetchCommand | None,
        drop: set[bytes],
        served: Served,
    ) -> bytes:
        """The response for a message with its verdict: the server's items for a clean
        one, the same items cut from the replacement otherwise."""
        items = [i for i in fetch.items if i.key not in drop]
        if served.kind is Kind.CLEAN:
            if len(items) == len(fetch.items):
                return raw
            return compose_fetch(fetch.seq, [(i.label, i.value) for i in items])
        if served.data is None:  # not a replacement after all: nothing of the content
            kept = [(i.label, i.value) for i in items if not is_content(i.label)]
            return compose_fetch(fetch.seq, kept)
        out: list[tuple[bytes, bytes]] = []
        for item in items:
            requested = command.requested(item.key) if command is not None else None
            count = None
            if requested is not None:
                span = partial(requested)
                count = span[1] if span else None
            value = item_value(item.label, served.data, count=count, single=served.warned)
            out.append((item.label, item.value if value is None else value))
        return compose_fetch(fetch.seq, out)

    def _known(
        self, raw: bytes, fetch: FetchResponse, command: FetchCommand | None, drop: set[bytes]
    ) -> bytes:
        """A FETCH response without content: sizes and structure of a message already
        served as a replacement follow the replacement."""
        served = self._cached(fetch)
        items = [i for i in fetch.items if i.key not in drop]
        if served is None or served.kind is not Kind.REPLACED or served.data is None:
            if len(items) == len(fetch.items):
                return raw
            return compose_fetch(fetch.seq, [(i.label, i.value) for i in items])
        out = []
        for item in items:
            value = item_value(item.label, served.data, single=served.warned)
            out.append((item.label, item.value if value is None else value))
        return compose_fetch(fetch.seq, out)

    def _all_cached(self, command: FetchCommand) -> bool:
        uids = command.uids()
        if not uids or self.uidvalidity is None:
            return False
        for uid in uids:
            hit = self.scanner.cached((self.user, self.mailbox, self.uidvalidity, uid))
            if hit is None:
                return False
        return True

    def _cached(self, fetch: FetchResponse) -> Served | None:
        uid_item = fetch.get(b"UID")
        if uid_item is None or not uid_item.value.isdigit() or self.uidvalidity is None:
            return None
        return self.scanner.cached((self.user, self.mailbox, self.uidvalidity, int(uid_item.value)))

    # --- capabilities, TLS --------------------------------------------------------------------

    def _filter_caps(self, raw: bytes) -> bytes:
        offer = self.client_tls is not None and not self.client.tls and self.user is None

        def clean(caps: bytes) -> bytes:
            kept = [c for c in caps.split() if not _DROP_CAPS.match(c)]
            if offer:
                kept.append(b"STARTTLS")
            return b" ".join(kept)

        match = _CAPS_LINE.match(raw)
        if match:
            return b"* CAPABILITY " + clean(match.group(1)) + b"\r\n"
        return _CAPS_CODE.sub(lambda m: b"[CAPABILITY " + clean(m.group(1)) + b"]", raw)

    async def _starttls(self, tag: bytes) -> bool:
        if self.client_tls is None or self.client.tls or self.user is not None:
            await self._send(tag + b" BAD STARTTLS is not available\r\n")
            return True
        await self._send(tag + b" OK Begin TLS negotiation now\r\n")
        await self.client.start_tls(self.client_tls)
        return True


def _string_value(value: bytes) -> bytes | None:
    """The content of a literal or quoted string value; None for NIL or anything else."""
    if value[:1] in (b"{", b"~", b'"'):
        try:
            return astring(value, 0)[0]
        except ImapError:
            return None
    return None


def _first_argument(command: bytes) -> bytes | None:
    """The first argument of ``tag VERB argument ...`` (atom, quoted or literal): the
    user name of LOGIN, the mailbox of SELECT."""
    try:
        pos = command.index(b" ", command.index(b" ") + 1) + 1
        return astring(command, pos)[0]
    except (ValueError, ImapError):
        return None


#: how ``mailwarden imap-proxy`` starts (``download.serve``)
IMAP = ProxyProtocol(
    "imap-proxy", ImapSession, busy=b"* BYE [UNAVAILABLE] Too many sessions, try again later\r\n"
)
