"""The POP3 proxy against a server that misbehaves: a message cut short, one over
the size limit, garbage listings.  Nothing is corrupted or passed unscanned."""

from __future__ import annotations

import asyncio
from pathlib import Path

from intercept.imap.fakes import CLOSE, EICAR, EicarScanner, scripted_server, start_proxy, talk
from mailwarden.intercept.pop3 import POP3

CLEAN = b"Subject: ok\r\n\r\n" + b"clean line\r\n" * 200
INFECTED = b"Subject: bad\r\n\r\n" + EICAR + b"\r\n"


def answer_with(messages: dict[int, bytes], *, cut: bool = False):  # type: ignore[no-untyped-def]
    def answer(line: bytes) -> bytes | None:
        words = line.split()
        verb = words[0].upper() if words else b""
        if verb == b"UIDL":
            return b"+OK\r\n" + b"".join(b"%d uid%d\r\n" % (n, n) for n in messages) + b".\r\n"
        if verb == b"LIST":
            return (
                b"+OK\r\n"
                + b"".join(b"%d %d\r\n" % (n, len(m)) for n, m in messages.items())
                + b".\r\n"
            )
        if verb in (b"RETR", b"TOP"):
            body = messages[int(words[1])]
            if cut:
                return b"+OK\r\n" + body[: len(body) // 2] + CLOSE
            return b"+OK\r\n" + body + b".\r\n"
        if verb == b"QUIT":
            return b"+OK bye\r\n" + CLOSE
        return b"+OK\r\n"

    return answer


def run(answer, client: bytes, until: bytes, tmp_path: Path, *, extra: str = "") -> bytes:  # type: ignore[no-untyped-def]
    async def go() -> bytes:
        async with scripted_server(b"+OK fake\r\n", answer) as port:
            proxy = await start_proxy(tmp_path, POP3, port, EicarScanner(), extra=extra)
            try:
                return await talk(proxy.ports[0], client, until=until)
            finally:
                await proxy.stop()

    return asyncio.run(go())


def test_a_message_cut_short_is_never_served(tmp_path: Path) -> None:
    got = run(
        answer_with({1: CLEAN}, cut=True), b"USER a\r\nPASS b\r\nRETR 1\r\n", b"closing", tmp_path
    )
    assert b"clean line" not in got
    assert got.rstrip().endswith(b"Proxy error, closing the connection")


def test_a_message_over_the_limit_gets_err_and_the_session_goes_on(tmp_path: Path) -> None:
    got = run(answer_with({1: CLEAN, 2: b"Subject: x\r\n\r\nsmall\r\n"}),
              b"USER a\r\nPASS b\r\nRETR 1\r\nRETR 2\r\nQUIT\r\n", b"bye", tmp_path,
              extra="max_message_size = 1024")  # fmt: skip
    assert b"clean line" not in got
    assert b"-ERR [SYS/TEMP] Message 1 could not be scanned" in got
    assert b"small\r\n.\r\n" in got


def test_infected_is_replaced_and_listed_with_its_size(tmp_path: Path) -> None:
    got = run(
        answer_with({1: INFECTED}),
        b"USER a\r\nPASS b\r\nRETR 1\r\nLIST\r\nQUIT\r\n",
        b"bye",
        tmp_path,
    )
    assert EICAR not in got
    size = int(got.split(b" octets\r\n", 1)[0].rsplit(b"+OK ", 1)[1])
    assert b"+OK\r\n1 %d\r\n.\r\n" % size in got


def test_garbage_listings_pass_without_breaking_the_session(tmp_path: Path) -> None:
    def answer(line: bytes) -> bytes | None:
        if line.upper().startswith((b"LIST", b"UIDL")):
            return b"+OK\r\nnot a listing\r\n1 x\r\n.\r\n"
        if line.upper().startswith(b"QUIT"):
            return b"+OK bye\r\n" + CLOSE
        return b"+OK\r\n"

    got = run(answer, b"USER a\r\nPASS b\r\nLIST\r\nQUIT\r\n", b"bye", tmp_path)
    assert b"not a listing" in got and b"+OK bye" in got
