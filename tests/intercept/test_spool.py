"""DATA reading: dot-stuffing, line ends, long lines, the size limit, spilling to a file."""

from __future__ import annotations

import asyncio

import pytest

from mailwarden.intercept.spool import DataStatus, MessageSpool, read_data


def _read(
    wire: bytes, *, limit: int = 1024, max_size: int = 10**9, threshold: int = 1 << 20
) -> tuple[DataStatus, bytes, bool, bytes]:
    """Feed ``wire`` to a reader; return status, message, spilled, and what was left unread."""

    async def go() -> tuple[DataStatus, bytes, bool, bytes]:
        reader = asyncio.StreamReader(limit=limit)
        reader.feed_data(wire)
        reader.feed_eof()
        spool = MessageSpool(threshold)
        status = await read_data(reader, spool, max_size=max_size)
        value, spilled = spool.getvalue(), spool.spilled
        spool.close()
        return status, value, spilled, await reader.read()

    return asyncio.run(go())


def test_dot_stuffing_removed_and_terminator_consumed_exactly() -> None:
    status, data, _, rest = _read(b"a\r\n..b\r\n.\r\nQUIT\r\n")
    assert status is DataStatus.OK
    assert data == b"a\r\n.b\r\n"
    assert rest == b"QUIT\r\n"  # pipelined commands stay for the session


def test_empty_message() -> None:
    assert _read(b".\r\n")[1] == b""


def test_bare_lf_normalised_and_lf_dot_is_not_the_end() -> None:
    _, data, _, _ = _read(b"a\nb\r\n.\nc\r\n.\r\n")
    assert data == b"a\r\nb\r\n\r\nc\r\n"


def test_lines_longer_than_the_reader_limit_pass_in_pieces() -> None:
    line = b"x" * 5000 + b"\r" + b"y" * 3000
    status, data, _, _ = _read(line + b"\r\n.\r\n", limit=1024)
    assert status is DataStatus.OK
    assert data == line + b"\r\n"


def test_cr_split_from_its_lf_across_pieces() -> None:
    # the piece boundary falls between CR and LF; the line end must survive
    line = b"z" * 1023 + b"\r\n"
    assert _read(line + b".x\r\n.\r\n", limit=1024)[1] == line + b"x\r\n"


def test_over_the_limit_everything_is_read_nothing_kept() -> None:
    status, data, _, rest = _read(b"x" * 100 + b"\r\n" * 50 + b".\r\nNOOP\r\n", max_size=64)
    assert status is DataStatus.TOO_BIG
    assert data == b""
    assert rest == b"NOOP\r\n"


def test_large_message_spills_to_a_file() -> None:
    body = b"0123456789" * 100 + b"\r\n"
    status, data, spilled, _ = _read(body * 200 + b".\r\n", threshold=8192)
    assert status is DataStatus.OK and spilled
    assert data == body * 200


def test_client_gone_mid_data_raises() -> None:
    with pytest.raises(asyncio.IncompleteReadError):
        _read(b"half a line")


def test_dot_at_the_end_of_a_line_is_data() -> None:
    assert _read(b"end.\r\nmore.\r\n.\r\n")[1] == b"end.\r\nmore.\r\n"


def test_one_line_message_and_terminator_after_a_full_buffer() -> None:
    assert _read(b"Subject: x\r\n.\r\n")[1] == b"Subject: x\r\n"
    body = b"a" * 1021 + b"\r\n"  # the reader's buffer fills up just before the dot
    for extra in range(6):
        data = b"b" * extra + body
        assert _read(data + b".\r\n", limit=1024)[1] == data


def test_dot_stuffed_lines_across_pieces() -> None:
    lines = [b"x" * n + b"\r\n..dot\r\n" for n in range(1015, 1030)]
    data = b"".join(lines)
    assert _read(data + b".\r\n", limit=1024)[1] == data.replace(b"\r\n..", b"\r\n.")
