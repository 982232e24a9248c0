"""protocol.py: framing, command parsing and clamd's reply text, without sockets."""

from __future__ import annotations

import pytest

from mailwarden.daemon import protocol as p
from mailwarden.verdict import Category, Finding, Status, Verdict


def frame_all(data: bytes, *, at_eof: bool = False) -> list[p.RawCommand]:
    framer = p.CommandFramer()
    framer.feed(data)
    out = []
    while (raw := framer.next_command(at_eof=at_eof)) is not None:
        out.append(raw)
    return out


def test_z_n_and_old_style_commands_are_framed_by_their_terminators() -> None:
    cmds = frame_all(b"zPING\0nVERSION\nSTATS\n")
    assert [(c.style, c.body) for c in cmds] == [
        (p.Style.NUL, b"PING"),
        (p.Style.NEWLINE, b"VERSION"),
        (p.Style.OLD, b"STATS"),
    ]
    assert [c.style.term for c in cmds] == [b"\0", b"\n", b"\n"]


def test_an_incomplete_command_waits_for_more_bytes() -> None:
    framer = p.CommandFramer()
    framer.feed(b"zPI")
    assert framer.next_command() is None
    framer.feed(b"NG\0zVER")
    assert framer.next_command() == p.RawCommand(p.Style.NUL, b"PING")
    assert framer.next_command() is None
    assert bytes(framer.buffer) == b"zVER"


def test_an_unterminated_old_style_line_counts_at_end_of_stream() -> None:
    assert frame_all(b"PING", at_eof=True) == [p.RawCommand(p.Style.OLD, b"PING")]
    # a z-command needs its NUL even at the end
    assert frame_all(b"zPING", at_eof=True) == []


def test_a_line_over_the_limit_is_refused_with_its_style() -> None:
    framer = p.CommandFramer(limit=100)
    framer.feed(b"z" + b"A" * 200)
    with pytest.raises(p.CommandTooLong) as info:
        framer.next_command()
    assert info.value.style is p.Style.NUL


def test_stream_bytes_after_a_command_stay_in_the_buffer() -> None:
    framer = p.CommandFramer()
    framer.feed(b"zINSTREAM\0\0\0\0\x05hello")
    assert framer.next_command() == p.RawCommand(p.Style.NUL, b"INSTREAM")
    assert framer.take(4) == b"\0\0\0\x05"
    assert framer.take(100) == b"hello"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"zPING\0", ("PING", None)),
        (b"zSCAN /var/mail/x\0", ("SCAN", "/var/mail/x")),
        (b"nCONTSCAN /a b\n", ("CONTSCAN", "/a b")),
        (b"zVERSIONCOMMANDS\0", ("VERSIONCOMMANDS", None)),
        (b"SCAN /x\n", ("SCAN", "/x")),
        (b"QUIT\n", ("QUIT", None)),
        (b'zMAILSCAN {"sender": "a@b"}\0', ("MAILSCAN", '{"sender": "a@b"}')),
    ],
)
def test_known_commands_parse(data: bytes, expected: tuple[str, str | None]) -> None:
    (raw,) = frame_all(data)
    cmd = p.parse_command(raw)
    assert cmd is not None
    assert (cmd.name, cmd.arg) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"zFOO\0",
        b"zPING extra\0",  # trailing garbage
        b"zSCAN\0",  # missing argument
        b"zSCAN \0",
        b"VERSIONCOMMANDS\n",  # not an old-style command
        b"IDSESSION\n",
        b"zpING\0",
        b"z\xff\xfe\0",
        b"zSTREAM\0",  # removed from clamd
    ],
)
def test_malformed_or_unknown_commands_do_not_parse(data: bytes) -> None:
    (raw,) = frame_all(data)
    assert p.parse_command(raw) is None


def test_undecodable_path_bytes_survive_for_the_file_system() -> None:
    (raw,) = frame_all(b"zSCAN /tmp/\xff.eml\0")
    cmd = p.parse_command(raw)
    assert cmd is not None and cmd.arg is not None
    assert cmd.arg.encode("utf-8", "surrogateescape") == b"/tmp/\xff.eml"


def test_versioncommands_lists_clamds_commands_then_mailscan() -> None:
    clamd = (
        "SCAN QUIT RELOAD PING CONTSCAN VERSIONCOMMANDS VERSION END SHUTDOWN MULTISCAN "
        "FILDES STATS IDSESSION INSTREAM DETSTATSCLEAR DETSTATS ALLMATCHSCAN"
    )
    assert " ".join(p.COMMANDS) == clamd + " MAILSCAN"


def test_replies_carry_the_session_id_and_terminator() -> None:
    assert p.reply(b"\0", "PONG") == b"PONG\0"
    assert p.reply(b"\n", "stream: OK", session_id=7) == b"7: stream: OK\n"


def verdict(
    *findings: Finding, status: Status = Status.INFECTED, reason: str | None = None
) -> Verdict:
    return Verdict(status, findings, reason=reason)


def test_verdict_lines_match_clamds_reply_text() -> None:
    official = Finding("Eicar-Test-Signature", "1/eicar.com", "clamav")
    unofficial = Finding("Local.Sig", "", "clamav", official=False)
    heuristic = Finding(
        "Heuristics.DoubleExtension", "2/a.pdf.exe", "heuristics", Category.SUSPICIOUS
    )
    assert p.verdict_lines("stream", verdict(official)) == ["stream: Eicar-Test-Signature FOUND"]
    assert p.verdict_lines("stream", verdict(unofficial)) == ["stream: Local.Sig.UNOFFICIAL FOUND"]
    assert p.verdict_lines("fd[5]", verdict(heuristic, status=Status.SUSPICIOUS)) == [
        "fd[5]: Heuristics.DoubleExtension FOUND"
    ]
    assert p.verdict_lines("stream", Verdict(Status.CLEAN)) == ["stream: OK"]
    both = verdict(official, unofficial)
    assert p.verdict_lines("/m", both) == ["/m: Eicar-Test-Signature FOUND"]
    assert p.verdict_lines("/m", both, all_matches=True) == [
        "/m: Eicar-Test-Signature FOUND",
        "/m: Local.Sig.UNOFFICIAL FOUND",
    ]


def test_unscanned_is_reported_as_configured_and_never_silently_ok_by_default() -> None:
    v = Verdict(Status.UNSCANNED, reason="encrypted archive in 2/a.zip")
    (line,) = p.verdict_lines("stream", v)
    assert line.startswith("stream: ") and line.endswith(" ERROR")
    assert "encrypted archive in 2/a.zip" in line
    assert p.verdict_lines("stream", v, unscanned="found") == ["stream: Heuristics.Unscanned FOUND"]
    assert p.verdict_lines("stream", v, unscanned="ok") == ["stream: OK"]


def test_error_verdicts_are_errors() -> None:
    v = Verdict(Status.ERROR, reason="internal error: boom")
    # one colon only, after the name: clamdscan splits replies at the last one
    assert p.verdict_lines("stream", v) == ["stream: internal error - boom ERROR"]


def test_names_cannot_forge_reply_lines() -> None:
    evil = Finding("X\0\n1: stream: OK", "", "clamav")
    (line,) = p.verdict_lines("stream", verdict(evil))
    assert "\0" not in line and "\n" not in line


def test_client_side_framing_round_trips_through_the_server_side() -> None:
    data = b"x" * 150_000
    framer = p.CommandFramer()
    framer.feed(p.command("INSTREAM") + b"".join(bytes(c) for c in p.chunks(data, 65536)))
    assert framer.next_command() == p.RawCommand(p.Style.NUL, b"INSTREAM")
    received = b""
    while True:
        (size,) = p.CHUNK_HEADER.unpack(framer.take(4))
        if not size:
            break
        received += framer.take(size)
    assert received == data
    assert p.split_session_reply("12: stream: OK") == (12, "stream: OK")
    assert p.split_session_reply("stream: OK") == (0, "stream: OK")
