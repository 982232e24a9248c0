"""The stdlib-only client of `mailwarden mda`/`pipe`: what it reads of the configuration,
how it parses a command line, the wire format, and what it imports."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwarden.cli import mda_client as client
from mailwarden.cli.mda_cmd import add_arguments, split_command
from mailwarden.config import config_files, load_config
from mailwarden.config.schema import SECTION_BY_NAME

# --- configuration ------------------------------------------------------------------


def test_the_mirrored_defaults_are_the_schemas() -> None:
    mda = SECTION_BY_NAME["mda"]
    assert client._KEYS == ("agent", "agent_socket", "agent_timeout", "exit_tempfail")
    mirrors = {
        "agent": client.DEFAULT_AGENT,
        "agent_socket": client.DEFAULT_AGENT_SOCKET,
        "agent_timeout": client.DEFAULT_AGENT_TIMEOUT,
        "exit_tempfail": client.DEFAULT_TEMPFAIL,
    }
    for key, value in mirrors.items():
        option = mda.option(key)
        assert option is not None and option.default == value, key


def test_it_reads_the_files_the_loader_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    main = tmp_path / "mailwarden.toml"
    main.write_text('[mda]\nagent_socket = "/main.sock"\n')
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "20-b.toml").write_text("[mda]\nagent_timeout = 9\n")
    (tmp_path / "conf.d" / "10-a.toml").write_text('[mda]\nagent_socket = "/a.sock"\n')
    (tmp_path / "conf.d" / "notes.txt").write_text("agent = 'ignored'")
    assert client._config_files(str(main)) == [str(p) for p in config_files(main)]
    route = client.agent_route(str(main))
    assert route is not None
    assert (route.socket, route.timeout, route.mode) == ("/a.sock", 9.0, "auto")
    assert load_config(main)["mda"]["agent_socket"] == "/a.sock"
    monkeypatch.setenv("MAILWARDEN_CONFIG", str(main))
    assert client._config_files(None) == [str(p) for p in config_files(None)]


@pytest.mark.parametrize(
    "text",
    [
        '[mda]\nagent = "off"\n',
        '[mda]\nagent = "sometimes"\n',  # the loader reports it, with file and line
        '[mda]\nagent_timeout = "soon"\n',
        "[mda]\nexit_tempfail = 0\n",
        "[mda\nagent = 1\n",  # not TOML
    ],
)
def test_what_it_cannot_use_goes_to_the_in_process_path(tmp_path: Path, text: str) -> None:
    path = tmp_path / "m.toml"
    path.write_text(text)
    assert client.agent_route(str(path)) is None


def test_a_missing_explicit_file_goes_to_the_in_process_path(tmp_path: Path) -> None:
    assert client.agent_route(str(tmp_path / "missing.toml")) is None


TOMLS = [
    '[mda]\nagent_socket = "/x.sock"  # comment\nagent_timeout = 20\nexit_tempfail = 75\n',
    "[mda]\nagent = 'require'\nagent_socket_mode = \"0666\"\nagent_max_requests = 4\n",
    '[serve]\nagents = [\n  "mda-agent",\n]\n[mda]\nagent_timeout = 1.5\n',
    '[daemon]\nsocket = "/d"\n\n[mda]\n\n# agent = "off"\nspool_threshold = "1 MiB"\n',
    '[mda]\n"agent" = "off"\n',
    'mda.agent = "off"\n',
    'mda = { agent = "off" }\n',
    '[mda]\nagent_socket = "/with\\"quote"\n',
    "[mda]\nagent_timeout = 1_000\n",
    '[policy]\nnote = """\n[mda]\nagent = "off"\n"""\n',
    '[ mda ]\nagent = "off"\n',
    '[mda.sub]\nagent = "x"\n',
    '[[policy.override]]\nrecipients = ["a@b"]\n[mda]\nagent = "require"\n',
    '[[mda]]\nagent = "off"\n',
    '[mda]\nagent = "off"\n[[mda.x]]\nagent = "on"\n',
]


@pytest.mark.parametrize("text", TOMLS)
def test_the_plain_reader_agrees_with_tomllib(text: str) -> None:
    section = tomllib.loads(text).get("mda", {})
    found = client.simple_keys(text)
    if not isinstance(section, dict):  # [[mda]]: not the schema's; the loader refuses it
        assert found is None
        return
    expected = {k: v for k, v in section.items() if k in client._KEYS}
    # None means "ask tomllib"; otherwise it must be what tomllib says
    assert found is None or found == expected, (found, expected)


@given(
    st.sampled_from(client._KEYS),
    st.one_of(
        st.text(
            alphabet=st.characters(
                blacklist_characters='"\\\n\r', blacklist_categories=("Cs", "Cc")
            )
        ),
        st.integers(-(2**31), 2**31),
        st.floats(allow_nan=False, allow_infinity=False, width=32),
    ),
)
def test_the_plain_reader_agrees_with_tomllib_on_values(key: str, value: object) -> None:
    rendered = f'"{value}"' if isinstance(value, str) else repr(value)
    text = f"[mda]\n{key} = {rendered}\n"
    try:
        expected = tomllib.loads(text)["mda"]
    except tomllib.TOMLDecodeError:
        return
    found = client.simple_keys(text)
    assert found is None or found == expected


# --- the command line -----------------------------------------------------------------


def _argparse(verb: str, argv: list[str]) -> tuple[dict[str, object], list[str]] | None:
    options, _ = split_command(argv)
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser)
    try:
        args = parser.parse_args(options)
    except (argparse.ArgumentError, SystemExit):
        return None
    values = {"config": args.config, "daemon_socket": args.daemon_socket, "sender": args.sender}
    return values, list(args.recipient)


@pytest.mark.parametrize(
    "argv",
    [
        ["--sender", "a@b", "--recipient", "c@d", "--", "procmail", "-a", "x"],
        ["-f", "", "-r", "c@d", "-r", "e@f", "-c", "/etc/m.toml", "--", "maildrop"],
        ["--sender=a@b", "--recipient=c@d", "--config=/x", "--", "lda", "--", "-f"],
        ["--daemon-socket", "/d.sock", "--", "procmail"],
        ["-r", "c@d", "-r", "c@d", "--sender", "x", "--sender", "y", "--", "m"],
    ],
)
def test_the_plain_parser_agrees_with_argparse(argv: list[str]) -> None:
    parsed = client._parse("mda", argv)
    assert parsed is not None
    values, recipients, command = parsed
    expected = _argparse("mda", argv)
    assert expected is not None
    assert {**values, "sender": values["sender"] or ""} == {
        **expected[0],
        "sender": expected[0]["sender"] or "",
    }
    assert recipients == expected[1]
    assert command == argv[argv.index("--") + 1 :]


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--recip", "c@d", "--", "m"],  # an abbreviation: argparse's to judge
        ["-rc@d", "--", "m"],
        ["--sender", "-x", "--", "m"],
        ["-r", "c@d", "m"],  # no --
        ["-r", "c@d", "--"],  # nothing after --
        ["-r"],
        ["--unknown", "--", "m"],
    ],
)
def test_anything_unusual_is_left_to_argparse(argv: list[str]) -> None:
    assert client._parse("mda", argv) is None


def test_pipe_takes_no_command() -> None:
    assert client._parse("pipe", ["-r", "c@d"]) == (
        {"config": None, "daemon_socket": None, "sender": None},
        ["c@d"],
        [],
    )
    assert client._parse("pipe", ["-r", "c@d", "--", "x"]) is None


# --- the wire -------------------------------------------------------------------------


def test_a_frame_round_trips_with_its_descriptor(tmp_path: Path) -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    payload = tmp_path / "m"
    payload.write_bytes(b"Subject: x\n\nhello\n")
    fd = os.open(payload, os.O_RDONLY)
    with left, right:
        fields = client.request_fields("mda", "a@b", ["c@d", "\udcffraw@x"])
        client.send_frame(left, fields, fd)
        os.close(fd)
        right.settimeout(5)
        got, received = client.receive_frame(right)
    assert got == [b"mda", b"a@b", b"c@d", b"\xffraw@x"]
    assert received is not None
    with os.fdopen(received, "rb") as fh:
        assert fh.read() == b"Subject: x\n\nhello\n"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"abc:", "bad frame length"),
        (b"9999999:", "bad frame length"),
        (b"70000:", "frame too large"),
        (b"5:hello", "not an mda agent frame"),
        (b"6:mwmda1xx", "data after the frame"),
    ],
)
def test_malformed_frames_are_refused(data: bytes, problem: str) -> None:
    receiver = client.Receiver()
    with pytest.raises(client.WireError, match=problem):
        receiver.feed(data, [])


def test_a_frame_may_arrive_in_pieces() -> None:
    data = client.frame([b"0", b"exit", b"75", b""])
    receiver = client.Receiver()
    for i in range(len(data) - 1):
        assert receiver.feed(data[i : i + 1], []) is None
    assert receiver.feed(data[-1:], []) == [b"0", b"exit", b"75", b""]


def test_large_input_spills_to_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    data = os.urandom(client.SPILL + 12345)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child writes and leaves
        os.close(read_end)
        os.write(write_end, data)
        os._exit(0)
    os.close(write_end)
    fd = client.spool_stdin(read_end)
    os.close(read_end)
    os.waitpid(pid, 0)
    try:
        assert os.readlink(f"/proc/self/fd/{fd}").startswith(str(tmp_path))
        with os.fdopen(os.dup(fd), "rb") as fh:
            assert fh.read() == data
    finally:
        os.close(fd)


# --- what a delivery imports ------------------------------------------------------------


def test_the_fast_path_imports_nothing_but_the_standard_library(tmp_path: Path) -> None:
    config = tmp_path / "m.toml"
    config.write_text(f'[mda]\nagent_socket = "{tmp_path / "a.sock"}"\nagent = "require"\n')
    code = (
        "import sys\n"
        "from mailwarden.cli import main\n"
        f"code = main(['mda', '-c', {str(config)!r}, '-r', 'a@b', '--', '/bin/true'])\n"
        "mine = sorted(m for m in sys.modules if m.startswith('mailwarden'))\n"
        "heavy = ('typing', 'argparse', 'tomllib', 'asyncio', 're', 'socket', 'enum')\n"
        "heavy += ('collections', 'selectors')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "print(code, mine, heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == (
        "75 ['mailwarden', 'mailwarden.cli', 'mailwarden.cli.mda_client', 'mailwarden.errors'] []"
    ), done.stderr
    assert "the mda agent is not answering" in done.stderr
