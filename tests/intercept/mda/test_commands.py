"""`mailwarden mda` and `mailwarden pipe` run as the mail user, against the real daemon.

Each outcome's exit status and stderr line, the copy the MDA receives, and
every failure path (daemon down or silent, store, input, command line,
configuration, MDA) ending in a code that keeps the mail.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from intercept.mda.harness import MdaRig
from intercept.mda.mail import FROM_LINE, header_block, message

RCPT = "user@mda.example"
BOUNCE = '[policy]\nafter_queue_reject = "bounce"\n'


def out_file(rig: MdaRig, name: str) -> Path:
    path = rig.out / name
    path.unlink(missing_ok=True)
    return path


# --- deliveries -------------------------------------------------------------------------


def test_clean_mail_reaches_the_mda_with_the_status_headers(rig: MdaRig) -> None:
    data, mid = message(from_line=True)
    target = out_file(rig, "clean")
    done = rig.mda(
        ["--sender", "sender@remote.example", "--recipient", RCPT, "--", *rig.save_to(target)], data
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    got = target.read_bytes()
    # the mbox From_ line stays first, the new fields come right after it
    assert got.startswith(FROM_LINE + b"X-Virus-Scanned: mailwarden ")
    assert b"\nX-Virus-Status: Clean\n" in header_block(got)
    assert mid.encode() in got
    assert got.split(b"\n\n", 1)[1] == data.split(b"\n\n", 1)[1]


def test_infected_mail_is_quarantined_by_default_and_the_mda_never_runs(rig: MdaRig) -> None:
    data, mid = message(infected=True)
    target = out_file(rig, "quarantined")
    done = rig.mda(["--recipient", RCPT, "--", *rig.save_to(target)], data)
    assert done.returncode == 0, done.stderr
    assert not target.exists()
    entries = [e for e in rig.quarantined() if mid in str(e["subject"]) or e["size"] == len(data)]
    assert any(e["verdict"]["status"] == "infected" for e in entries)  # type: ignore[index]


def test_infected_mail_bounces_with_a_one_line_reason(rig: MdaRig) -> None:
    data, _ = message(infected=True)
    target = out_file(rig, "bounced")
    done = rig.mda(
        ["--recipient", RCPT, "--", *rig.save_to(target)], data, config=rig.config("bounce", BOUNCE)
    )
    assert done.returncode == 77
    assert done.stderr == b"5.7.1 Infected: Eicar-Test-Signature\n"
    assert not target.exists()


def test_every_exit_code_is_configurable(rig: MdaRig) -> None:
    codes = rig.config("codes", BOUNCE + "[mda]\nexit_reject = 69\nexit_discard = 3\n")
    data, _ = message(infected=True)
    assert rig.mda(["-r", RCPT, "--", "/bin/true"], data, config=codes).returncode == 69
    discard = rig.config(
        "discard", '[policy]\ninfected = "discard"\n[mda]\nexit_discard = 3\nexit_quarantine = 4\n'
    )
    done = rig.mda(["-r", RCPT, "--", "/bin/true"], data, config=discard)
    assert done.returncode == 3
    # a non-zero code for a silent outcome comes with its reason, as a permanent one
    assert done.stderr.startswith(b"5.7.0 Ok: discarded")


def test_tag_delivers_the_tagged_copy(rig: MdaRig) -> None:
    data, _ = message(infected=True, subject="invoice")
    target = out_file(rig, "tagged")
    done = rig.mda(
        ["-r", RCPT, "--", *rig.save_to(target)],
        data,
        config=rig.config("tag", '[policy]\ninfected = "tag"\n'),
    )
    assert done.returncode == 0, done.stderr
    head = header_block(target.read_bytes())
    assert b"\nSubject: ***VIRUS*** invoice\n" in head
    assert b"X-Virus-Status: Infected (Eicar-Test-Signature)" in head


def test_the_recipients_policy_applies(rig: MdaRig) -> None:
    cfg = rig.config(
        "override",
        BOUNCE + '[[policy.override]]\nrecipients = ["tagme@mda.example"]\ninfected = "tag"\n',
    )
    data, _ = message(infected=True)
    assert rig.mda(["-r", "TagMe@mda.example", "--", "/bin/true"], data, config=cfg).returncode == 0
    assert rig.mda(["-r", RCPT, "--", "/bin/true"], data, config=cfg).returncode == 77
    # one copy for several recipients: the strictest outcome answers for all
    both = ["-r", "tagme@mda.example", "-r", RCPT, "--", "/bin/true"]
    assert rig.mda(both, data, config=cfg).returncode == 77


def test_a_large_message_arrives_intact(rig: MdaRig) -> None:
    body = b"".join(b"line %07d of a long message, spooled to a file\n" % i for i in range(60_000))
    data, _ = message(body=body, from_line=True)
    target = out_file(rig, "large")
    cfg = rig.config("spill", "[mda]\nspool_threshold = 65536\n")
    done = rig.mda(["-r", RCPT, "--", *rig.save_to(target)], data, config=cfg)
    assert done.returncode == 0, done.stderr
    assert len(data) > 2_000_000
    got = target.read_bytes()
    assert got.startswith(FROM_LINE)
    assert got.split(b"\n\n", 1)[1] == body


def test_a_message_without_a_body_separator_is_delivered(rig: MdaRig) -> None:
    target = out_file(rig, "nosep")
    data = b"Subject: no body\nFrom: a@remote.example\n"
    done = rig.mda(["-r", RCPT, "--", *rig.save_to(target)], data)
    assert done.returncode == 0, done.stderr
    got = target.read_bytes()
    assert got.startswith(b"X-Virus-Scanned: ")
    assert got.endswith(data)
    body_only = b"just some text\nwithout any header\n"
    done = rig.mda(["-r", RCPT, "--", *rig.save_to(target)], body_only)
    assert done.returncode == 0, done.stderr
    assert target.read_bytes().endswith(body_only)


def test_the_mdas_own_exit_status_is_passed_through(rig: MdaRig) -> None:
    data, _ = message()
    done = rig.mda(["-r", RCPT, "--", "/bin/sh", "-c", "cat >/dev/null; exit 73"], data)
    assert done.returncode == 73
    done = rig.mda(
        ["-r", RCPT, "--", "/bin/sh", "-c", "cat >/dev/null; echo over quota >&2; exit 75"], data
    )
    assert (done.returncode, done.stderr) == (75, b"over quota\n")


# --- nothing is lost ------------------------------------------------------------------------


def test_daemon_unreachable_defers(rig: MdaRig) -> None:
    data, _ = message()
    target = out_file(rig, "unreachable")
    args = [
        "--daemon-socket",
        str(rig.out / "nothing.sock"),
        "-r",
        RCPT,
        "--",
        *rig.save_to(target),
    ]
    done = rig.mda(args, data)
    assert done.returncode == 75
    assert done.stderr == b"4.7.1 Scanning temporarily unavailable\n"
    assert not target.exists()


@pytest.fixture
def silent_daemon(rig: MdaRig) -> Iterator[Path]:
    """A unix socket that accepts connections and never answers."""
    path = rig.out / "silent.sock"
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    os.chmod(path, 0o666)  # noqa: S103 - the mail user connects to it
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield path
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_daemon_timeout_defers(rig: MdaRig, silent_daemon: Path) -> None:
    cfg = rig.config("timeout", "[mda]\nscan_timeout = 0.5\n")
    data, _ = message()
    target = out_file(rig, "timeout")
    args = ["--daemon-socket", str(silent_daemon), "-r", RCPT, "--", *rig.save_to(target)]
    done = rig.mda(args, data, config=cfg)
    assert done.returncode == 75
    assert done.stderr.startswith(b"4.7.1 ")
    assert not target.exists()


def test_pipe_defers_when_the_daemon_is_unreachable(rig: MdaRig) -> None:
    data, _ = message()
    done = rig.pipe(["--daemon-socket", str(rig.out / "nothing.sock")], data)
    assert (done.returncode, done.stdout) == (75, b"")
    assert done.stderr.startswith(b"4.7.1 ")


def test_a_store_that_cannot_be_written_defers(rig: MdaRig) -> None:
    locked = rig.root / "locked"
    locked.mkdir(exist_ok=True)
    locked.chmod(0o755)  # root's: the mail user cannot create the store there
    cfg = rig.config("locked")
    text = cfg.read_text().replace(str(rig.root / "mw" / "store"), str(locked / "store"))
    cfg.write_text(text)
    data, _ = message(infected=True)
    done = rig.mda(["-r", RCPT, "--", "/bin/true"], data, config=cfg)
    assert done.returncode == 75
    assert done.stderr.startswith(b"4.3.0 mailwarden mda: internal error: ")


def test_a_usage_error_keeps_the_mail(rig: MdaRig) -> None:
    data, _ = message()
    done = rig.mda(["-r", RCPT, "/bin/true"], data)
    assert done.returncode == 75
    assert (
        done.stderr
        == b"4.3.5 mailwarden mda: usage: missing -- before the original MDA's command line\n"
    )
    done = rig.mda(["-r", RCPT, "--"], data)
    assert (done.returncode, done.stderr) == (
        75,
        b"4.3.5 mailwarden mda: usage: no original MDA after --\n",
    )
    done = rig.mda(["--no-such-flag", "--", "/bin/true"], data)
    assert done.returncode == 75 and b"usage: unrecognized arguments" in done.stderr
    strict = rig.config("usage78", "[mda]\nexit_usage = 78\n")
    done = rig.mda(["-r", RCPT, "/bin/true"], data, config=strict)
    assert done.returncode == 78
    assert done.stderr.startswith(b"5.3.5 mailwarden mda: usage: missing --")


def test_a_missing_mda_keeps_the_mail(rig: MdaRig) -> None:
    data, _ = message()
    done = rig.mda(["-r", RCPT, "--", "/usr/bin/no-such-mda", "-d", "user"], data)
    assert done.returncode == 75
    assert b"'/usr/bin/no-such-mda' not found" in done.stderr
    done = rig.mda(["-r", RCPT, "--", "no-such-mda-in-path"], data)
    assert done.returncode == 75
    assert b"not found in $PATH" in done.stderr


def test_empty_input_keeps_the_mail(rig: MdaRig) -> None:
    for data in (b"", b"\n\n", FROM_LINE):
        done = rig.mda(["-r", RCPT, "--", "/bin/true"], data)
        assert done.returncode == 75, data
        assert done.stderr == b"4.3.0 mailwarden mda: no message on standard input\n"


def test_a_broken_configuration_keeps_the_mail(rig: MdaRig) -> None:
    bad = rig.config("bad", "[mda]\nexit_tempfail = 0\n")
    data, _ = message()
    done = rig.mda(["-r", RCPT, "--", "/bin/true"], data, config=bad)
    assert done.returncode == 75
    assert done.stderr.startswith(b"4.3.5 mailwarden mda: ")
    assert b"exit_tempfail" in done.stderr
    done = rig.mda(["-r", RCPT, "--", "/bin/true"], data, config=rig.root / "missing.toml")
    assert done.returncode == 75


def test_an_internal_error_keeps_the_mail(
    rig: MdaRig, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import io

    from mailwarden.intercept.mda import Request, agent, run_mda, run_pipe

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("something unexpected")

    monkeypatch.setattr(agent, "judge", broken)
    data, _ = message()
    request = Request(recipients=(RCPT,), config=str(rig.stack.config), command=("/bin/true",))
    assert run_mda(request, io.BytesIO(data)) == 75
    out = io.BytesIO()
    assert run_pipe(request, io.BytesIO(data), out) == 75
    assert out.getvalue() == b""
    err = capfd.readouterr().err
    assert err.count("4.3.0 mailwarden mda: internal error: something unexpected\n") == 1
    assert "4.3.0 mailwarden pipe: internal error: something unexpected\n" in err


# --- pipe -------------------------------------------------------------------------------


def test_pipe_writes_the_accepted_message(rig: MdaRig) -> None:
    data, mid = message(from_line=True)
    done = rig.pipe(["--recipient", RCPT], data)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(FROM_LINE + b"X-Virus-Scanned: ")
    assert b"X-Virus-Status: Clean" in header_block(done.stdout)
    assert mid.encode() in done.stdout
    tagged = rig.pipe(
        [], message(infected=True)[0], config=rig.config("tag", '[policy]\ninfected = "tag"\n')
    )
    assert tagged.returncode == 0
    assert b"Subject: ***VIRUS*** hello" in tagged.stdout


def test_pipe_exit_codes_say_what_happened(rig: MdaRig) -> None:
    data, _ = message(infected=True)
    quarantined = rig.pipe(["-r", RCPT], data)
    assert (quarantined.returncode, quarantined.stdout, quarantined.stderr) == (
        1,
        b"",
        b"5.7.0 Ok: quarantined\n",
    )
    discard = rig.pipe(
        [], data, config=rig.config("discard-pipe", '[policy]\ninfected = "discard"\n')
    )
    assert (discard.returncode, discard.stdout) == (2, b"")
    bounce = rig.pipe([], data, config=rig.config("bounce", BOUNCE))
    assert (bounce.returncode, bounce.stdout) == (77, b"")
    assert bounce.stderr == b"5.7.1 Infected: Eicar-Test-Signature\n"
    assert rig.pipe(["--", "x"], data).returncode == 75
