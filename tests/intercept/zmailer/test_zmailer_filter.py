"""``mailwarden zmailer-filter`` under a stand-in of ZMailer's smtpserver.

The stand-in speaks smtpserver(8zm)'s content filter protocol (``#hungry``,
the message file's path, one answer line) and disposes of the file as
smtpserver does, so each test checks the answer, the SMTP reply and where
the message file ended up: queued (``router/``), dropped, or frozen.
"""

from __future__ import annotations

from pathlib import Path

from intercept.harness import EICAR, MAILWARDEN, Stack
from intercept.mail import make_message
from intercept.zmailer.conftest import DOMAIN, filter_command
from support.zmailer_standin import Postoffice, message_file

SENDER = "alice@remote.example"
ENVELOPE_END = b"env-end\n"


def _split(data: bytes) -> tuple[bytes, bytes]:
    head, _, message = data.partition(ENVELOPE_END)
    return head + ENVELOPE_END, message


def test_clean_mail_is_queued_with_our_headers(zmailer_stack: Stack, tmp_path: Path) -> None:
    po = Postoffice.create(tmp_path / "postoffice")
    message, mid = make_message(sender=SENDER, to=f"bob@{DOMAIN}")
    rcpts = [f"bob@{DOMAIN}", f"carol@{DOMAIN}"]
    with po.start(filter_command(zmailer_stack)) as server:
        outcome = server.submit(message, SENDER, rcpts)
    assert outcome.result == 0 and outcome.reply.startswith("250 "), outcome
    [queued] = po.queued()
    head, body = _split(queued)
    assert head == _split(message_file(message, SENDER, rcpts))[0]  # envelope untouched
    assert b"X-Virus-Status: Clean" in body and mid.encode() in body
    assert body.endswith(message.replace(b"\r\n", b"\n").split(b"\n\n", 1)[1])
    assert po.leftovers() == []


def test_infected_mail_is_rejected_and_dropped(zmailer_stack: Stack, tmp_path: Path) -> None:
    po = Postoffice.create(tmp_path / "postoffice")
    message, _ = make_message(sender=SENDER, to=f"bob@{DOMAIN}", attachment=EICAR)
    with po.start(filter_command(zmailer_stack)) as server:
        outcome = server.submit(message, SENDER, [f"bob@{DOMAIN}"])
    assert outcome.result < 0
    assert outcome.reply.startswith("554 5.7.1 Infected"), outcome
    assert po.queued() == [] and po.frozen() == []


def test_tag_and_quarantine_per_recipient(zmailer_stack: Stack, tmp_path: Path) -> None:
    po = Postoffice.create(tmp_path / "postoffice")
    tagged, _ = make_message(sender=SENDER, to=f"tagged@{DOMAIN}", attachment=EICAR)
    held, _ = make_message(sender=SENDER, to=f"held@{DOMAIN}", attachment=EICAR)
    with po.start(filter_command(zmailer_stack)) as server:
        first = server.submit(tagged, SENDER, [f"tagged@{DOMAIN}"])
        second = server.submit(held, SENDER, [f"held@{DOMAIN}"])
    assert first.result == 0
    [queued] = po.queued()
    assert b"X-Virus-Status: Infected" in queued
    assert second.result < 0 and second.reply.startswith("250 "), second
    listing = zmailer_stack.cli("quarantine", "list", "--json").stdout
    assert f"held@{DOMAIN}" in listing
    assert len(po.queued()) == 1


def test_daemon_down_defers_and_the_retry_is_queued_once(
    zmailer_stack: Stack, tmp_path: Path
) -> None:
    po = Postoffice.create(tmp_path / "postoffice")
    link = tmp_path / "daemon.sock"  # dangling: the daemon is down
    link.symlink_to(tmp_path / "nothing-here")
    message, mid = make_message(sender=SENDER, to=f"bob@{DOMAIN}")
    with po.start(filter_command(zmailer_stack, socket=str(link))) as server:
        first = server.submit(message, SENDER, [f"bob@{DOMAIN}"])
        assert first.result < 0 and first.reply.startswith("451 "), first
        assert po.queued() == []
        # the daemon is back; the same filter process serves the client's retry
        link.unlink()
        link.symlink_to(zmailer_stack.socket)
        again = server.submit(message, SENDER, [f"bob@{DOMAIN}"])
    assert again.result == 0, again
    [queued] = po.queued()
    assert queued.count(mid.encode()) == 1


def test_bad_requests_are_temporary_and_the_filter_keeps_serving(
    zmailer_stack: Stack, tmp_path: Path
) -> None:
    po = Postoffice.create(tmp_path / "postoffice")
    no_env_end = po.write(b"from <a@x>\nto <b@y>\nSubject: no env-end\n\nbody\n")
    no_rcpt = po.write(b"from <a@x>\nenv-end\nSubject: x\n\nbody\n")
    (po.root / "public" / "a-folder").mkdir()
    message, _ = make_message(sender=SENDER, to=f"bob@{DOMAIN}")
    with po.start(filter_command(zmailer_stack)) as server:
        for path in ("public/missing", no_env_end, no_rcpt, "public/a-folder", ""):
            outcome = server.request(path)
            assert outcome.result < 0 and outcome.reply.startswith("451 4.3.0"), (path, outcome)
        assert server.submit(message, SENDER, [f"bob@{DOMAIN}"]).result == 0
        assert server.log == []  # nothing but answers and comments on the channel
    assert len(po.queued()) == 1


def test_end_of_input_ends_the_filter(zmailer_stack: Stack, tmp_path: Path) -> None:
    po = Postoffice.create(tmp_path / "postoffice")
    with po.start(filter_command(zmailer_stack)) as server:
        assert server.readline() == b"#hungry\n"
        assert server.close() == 0


def test_a_broken_configuration_defers_every_message(tmp_path: Path) -> None:
    po = Postoffice.create(tmp_path / "postoffice")
    broken = tmp_path / "broken.toml"
    broken.write_text("[zmailer\n")
    message, _ = make_message(sender=SENDER, to=f"bob@{DOMAIN}")
    with po.start([*MAILWARDEN, "zmailer-filter", "-c", str(broken)]) as server:
        for _ in range(2):
            outcome = server.submit(message, SENDER, [f"bob@{DOMAIN}"])
            assert outcome.result < 0 and outcome.reply.startswith("451 "), outcome
    assert po.queued() == []


def test_absolute_paths_and_the_postoffice_option(zmailer_stack: Stack, tmp_path: Path) -> None:
    po = Postoffice.create(tmp_path / "postoffice")
    message, _ = make_message(sender=SENDER, to=f"bob@{DOMAIN}")
    relative = po.write(message_file(message, SENDER, [f"bob@{DOMAIN}"]))
    argv = [*filter_command(zmailer_stack), "--postoffice", str(po.root)]
    with po.start(argv) as server:
        assert server.request(str(po.root / relative)).result == 0
        assert server.request(relative).result == 0
