"""The IMAP proxy against a server that misbehaves and clients that do: a literal
larger than what follows, oversized or malformed responses, a client that leaves
inside a literal, a slow client.  Nothing is corrupted or passed unscanned."""

from __future__ import annotations

import asyncio
from pathlib import Path

from intercept.imap.fakes import CLOSE, EICAR, EicarScanner, scripted_server, start_proxy, talk
from mailwarden.intercept.imap import IMAP

GREETING = b"* OK [CAPABILITY IMAP4rev1 LITERAL+ COMPRESS=DEFLATE BINARY] fake\r\n"
CLEAN = b"Subject: ok\r\n\r\n" + b"clean line\r\n" * 50
INFECTED = b"Subject: bad\r\n\r\n" + EICAR + b"\r\n"


def fetch_reply(
    tag: bytes, body: bytes, *, announce: int | None = None, cut: bool = False
) -> bytes:
    size = len(body) if announce is None else announce
    head = b"* 1 FETCH (UID 7 BODY[] {%d}\r\n" % size
    if cut:
        return head + body + CLOSE
    return head + body + b")\r\n" + tag + b" OK done\r\n"


def server(script: dict[bytes, bytes | None]):  # type: ignore[no-untyped-def]
    def answer(line: bytes) -> bytes | None:
        tag, _, rest = line.partition(b" ")
        for verb, reply in script.items():
            if rest.upper().startswith(verb):
                return None if reply is None else reply.replace(b"TAG", tag)
        return tag + b" OK fine\r\n"

    return answer


def run(script: dict[bytes, bytes | None], client: bytes, until: bytes, tmp_path: Path,
        *, extra: str = "") -> tuple[bytes, EicarScanner]:  # fmt: skip
    scanner = EicarScanner()

    async def go() -> bytes:
        async with scripted_server(GREETING, server(script)) as port:
            proxy = await start_proxy(tmp_path, IMAP, port, scanner, extra=extra)
            try:
                return await talk(proxy.ports[0], client, until=until)
            finally:
                await proxy.stop()

    return asyncio.run(go()), scanner


def test_a_literal_larger_than_what_follows_never_reaches_the_client(tmp_path: Path) -> None:
    reply = fetch_reply(b"TAG", CLEAN, announce=len(CLEAN) + 500, cut=True)
    got, scanner = run(
        {b"FETCH": reply, b"UID FETCH": reply}, b"a FETCH 1 BODY[]\r\n", b"BYE", tmp_path
    )
    assert b"clean line" not in got
    assert b"* BYE" in got
    assert scanner.seen == []


def test_an_oversized_response_ends_the_session_unserved(tmp_path: Path) -> None:
    big = b"x" * 200_000
    got, scanner = run({b"FETCH": fetch_reply(b"TAG", big)}, b"a FETCH 1 BODY[]\r\n", b"BYE",
                       tmp_path, extra="max_message_size = 65536")  # fmt: skip
    assert b"xxxx" not in got and b"* BYE" in got
    assert scanner.seen == []


def test_a_malformed_fetch_response_is_not_passed(tmp_path: Path) -> None:
    reply = b"* 1 FETCH (BODY[] {5}\r\nhello garbage here\r\nTAG OK done\r\n"
    got, _ = run({b"FETCH": reply}, b"a FETCH 1 BODY[]\r\n", b"BYE", tmp_path)
    assert b"hello" not in got


def test_infected_and_clean_in_one_answer(tmp_path: Path) -> None:
    reply = b"* 1 FETCH (UID 1 BODY[] {%d}\r\n%s)\r\n" % (
        len(CLEAN),
        CLEAN,
    ) + b"* 2 FETCH (UID 2 BODY[] {%d}\r\n%s)\r\nTAG OK done\r\n" % (len(INFECTED), INFECTED)
    got, _ = run({b"FETCH": reply}, b"a FETCH 1:2 BODY[]\r\n", b"a OK", tmp_path)
    assert b"* 1 FETCH (BODY[] {%d}\r\n%s)" % (len(CLEAN), CLEAN) in got  # UID was ours: removed
    assert EICAR not in got
    assert b"Subject: bad" in got and b"a OK done" in got


def test_scanning_failure_answers_no_for_the_fetch(tmp_path: Path) -> None:
    reply = fetch_reply(b"TAG", CLEAN * 4)
    got, _ = run({b"FETCH": reply}, b"a FETCH 1 BODY[]\r\n", b"a NO", tmp_path,
                 extra="max_message_size = 1024")  # fmt: skip
    assert b"clean line" not in got
    assert b"a NO [UNAVAILABLE]" in got


def test_capabilities_are_filtered_and_compress_is_refused(tmp_path: Path) -> None:
    got, _ = run({}, b"a COMPRESS DEFLATE\r\nb CAPABILITY\r\n", b"b OK", tmp_path)
    assert b"COMPRESS" not in got.split(b"a NO")[0]
    assert b"a NO [CANNOT]" in got


def test_a_client_that_leaves_inside_a_literal(tmp_path: Path) -> None:
    lines: list[bytes] = []

    def answer(line: bytes) -> bytes | None:
        lines.append(line)
        return b"+ go ahead\r\n" if line.endswith(b"}\r\n") else b"x OK\r\n"

    async def go() -> bytes:
        async with scripted_server(GREETING, answer) as port:
            proxy = await start_proxy(tmp_path, IMAP, port, EicarScanner())
            try:
                await talk(proxy.ports[0], b"a APPEND INBOX {100}\r\nonly ten b", until=b"+ go")
                # the proxy is still serving others
                return await talk(proxy.ports[0], b"b NOOP\r\n", until=b"OK")
            finally:
                await proxy.stop()

    assert b"OK" in asyncio.run(go())
    assert not any(b"only ten b" in line and line.endswith(b"\r\n") and b"APPEND" not in line
                   for line in lines if len(line) > 100)  # fmt: skip


def test_a_slow_client_gets_every_byte(tmp_path: Path) -> None:
    body = b"Subject: big\r\n\r\n" + b"".join(
        b"line %06d of a big clean message\r\n" % i for i in range(20000)
    )

    async def go() -> bytes:
        async with scripted_server(GREETING, server({b"FETCH": fetch_reply(b"TAG", body)})) as port:
            proxy = await start_proxy(tmp_path, IMAP, port, EicarScanner())
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", proxy.ports[0], limit=1024
                )
                writer.write(b"a FETCH 1 BODY[]\r\n")
                got = b""
                while b"a OK" not in got:
                    chunk = await reader.read(4096)
                    if not chunk:
                        break
                    got += chunk
                    await asyncio.sleep(0)  # a reader that lets the proxy wait
                writer.close()
                return got
            finally:
                await proxy.stop()

    got = asyncio.run(go())
    assert b"{%d}\r\n%s)" % (len(body), body) in got


def test_commands_pipelined_after_starttls_are_not_run(tmp_path: Path) -> None:
    from support.dovecot import make_certs

    certs = make_certs(tmp_path / "certs")
    seen: list[bytes] = []

    def answer(line: bytes) -> bytes | None:
        seen.append(line)
        return line.split(b" ", 1)[0] + b" OK fine\r\n"

    async def go() -> bytes:
        async with scripted_server(GREETING, answer) as port:
            extra = f'tls_cert = "{certs.cert}"\ntls_key = "{certs.key}"\nlisten_tls = ""'
            proxy = await start_proxy(tmp_path, IMAP, port, EicarScanner(), extra=extra)
            try:
                return await talk(proxy.ports[0], b"a STARTTLS\r\nb LOGIN x y\r\n", until=b"BYE")
            finally:
                await proxy.stop()

    got = asyncio.run(go())
    assert b"b OK" not in got
    assert not any(b"LOGIN" in line for line in seen)
