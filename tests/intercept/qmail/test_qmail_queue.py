"""``mailwarden qmail-queue`` between a qmail-smtpd stand-in and a stand-in qmail-queue.

Each test submits as qmail-smtpd does (message on descriptor 0, then the
envelope on descriptor 1) and checks the exit status, qmail-smtpd's reply
and what the real qmail-queue queued: byte for byte for clean mail,
nothing at all for every refusal and failure.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from intercept.harness import EICAR
from intercept.mail import make_message
from intercept.qmail.conftest import DOMAIN, QmailRig
from support.qmail_standin import encode, queued, submit

SENDER = "alice@remote.example"


def _lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")  # qmail keeps messages with LF line ends


def test_clean_mail_is_queued_with_the_same_envelope(qmail: QmailRig, tmp_path: Path) -> None:
    real, queue = qmail.standin(tmp_path)
    message, mid = make_message(sender=SENDER, to=f"bob@{DOMAIN}")
    rcpts = [f"bob@{DOMAIN}", f"carol@{DOMAIN}"]
    done = submit(qmail.command(real), _lf(message), SENDER, rcpts)
    assert (done.status, done.reply) == (0, "250 ok"), done.stderr
    [(mess, env)] = queued(queue)
    assert env == encode(SENDER, rcpts)
    assert mid.encode() in mess and b"X-Virus-Status: Clean" in mess
    assert mess.endswith(_lf(message).split(b"\n\n", 1)[1])


def test_infected_mail_is_refused_permanently_and_not_queued(
    qmail: QmailRig, tmp_path: Path
) -> None:
    real, queue = qmail.standin(tmp_path)
    message, _ = make_message(sender=SENDER, to=f"bob@{DOMAIN}", attachment=EICAR)
    done = submit(qmail.command(real), _lf(message), SENDER, [f"bob@{DOMAIN}"])
    assert done.status == 31
    assert done.reply.startswith("554 ")
    assert queued(queue) == []


def test_tag_queues_the_tagged_copy(qmail: QmailRig, tmp_path: Path) -> None:
    real, queue = qmail.standin(tmp_path)
    message, _ = make_message(sender=SENDER, to=f"tagged@{DOMAIN}", attachment=EICAR)
    done = submit(qmail.command(real), _lf(message), SENDER, [f"tagged@{DOMAIN}"])
    assert done.status == 0, done.stderr
    [(mess, _)] = queued(queue)
    assert b"X-Virus-Status: Infected" in mess


def test_quarantine_settles_the_message_without_queueing_it(
    qmail: QmailRig, tmp_path: Path
) -> None:
    real, queue = qmail.standin(tmp_path)
    message, _ = make_message(sender=SENDER, to=f"held@{DOMAIN}", attachment=EICAR)
    done = submit(qmail.command(real), _lf(message), SENDER, [f"held@{DOMAIN}"])
    assert (done.status, done.reply) == (0, "250 ok"), done.stderr
    assert queued(queue) == []
    listing = qmail.stack.cli("quarantine", "list", "--json").stdout
    assert f"held@{DOMAIN}" in listing


def test_daemon_down_defers_then_the_retry_is_queued_once(qmail: QmailRig, tmp_path: Path) -> None:
    real, queue = qmail.standin(tmp_path)
    message, mid = make_message(sender=SENDER, to=f"bob@{DOMAIN}")
    down = str(tmp_path / "no-daemon.sock")
    first = submit(qmail.command(real, socket=down), _lf(message), SENDER, [f"bob@{DOMAIN}"])
    assert (first.status, first.reply) == (
        71,
        "451 mail server temporarily rejected message (#4.3.0)",
    )
    assert queued(queue) == []
    # the client keeps the message and retries once the daemon answers again
    again = submit(qmail.command(real), _lf(message), SENDER, [f"bob@{DOMAIN}"])
    assert again.status == 0, again.stderr
    [(mess, _)] = queued(queue)
    assert mess.count(mid.encode()) == 1


def test_policy_defer_is_temporary(qmail: QmailRig, tmp_path: Path) -> None:
    real, queue = qmail.standin(tmp_path)
    message, _ = make_message(sender=SENDER, to=f"later@{DOMAIN}", attachment=EICAR)
    done = submit(qmail.command(real), _lf(message), SENDER, [f"later@{DOMAIN}"])
    assert done.status == 71
    assert queued(queue) == []


def test_the_real_qmail_queues_status_is_passed_through(qmail: QmailRig, tmp_path: Path) -> None:
    real, queue = qmail.standin(tmp_path)
    message, _ = make_message(sender=SENDER, to=f"bob@{DOMAIN}")
    env = {**os.environ, "STANDIN_QMAIL_QUEUE_EXIT": "53"}
    done = submit(qmail.command(real), _lf(message), SENDER, [f"bob@{DOMAIN}"], env=env)
    assert (done.status, done.reply) == (53, "451 qq write error or disk full (#4.3.0)")
    assert queued(queue) == []


MALFORMED = {
    "missing final NUL": b"Fa@x\0Tb@" + DOMAIN.encode() + b"\0",
    "missing NUL after the sender": b"Fa@x",
    "no F": b"Ta@x\0Tb@y\0\0",
    "empty recipient list": b"Fa@x\0\0",
    "unknown record": b"Fa@x\0Xb@y\0\0",
    "descriptor 1 closed at once": b"",
}


def test_malformed_envelopes_are_a_temporary_failure(qmail: QmailRig, tmp_path: Path) -> None:
    real, queue = qmail.standin(tmp_path)
    message, _ = make_message(sender=SENDER, to=f"bob@{DOMAIN}")
    for name, envelope in MALFORMED.items():
        done = submit(qmail.command(real), _lf(message), envelope=envelope)
        assert done.status == 91, name
        assert done.reply.startswith("451 "), name
    assert queued(queue) == []


def test_a_missing_real_qmail_queue_keeps_the_mail(qmail: QmailRig, tmp_path: Path) -> None:
    message, _ = make_message(sender=SENDER, to=f"bob@{DOMAIN}")
    done = submit(qmail.command(tmp_path / "nowhere"), _lf(message), SENDER, [f"bob@{DOMAIN}"])
    assert done.status == 81


def test_a_loop_back_into_the_wrapper_is_refused(qmail: QmailRig, tmp_path: Path) -> None:
    # the "real" qmail-queue is the wrapper itself, as after a botched rename
    _, queue = qmail.standin(tmp_path)
    wrapper = tmp_path / "qmail-queue"
    wrapper.write_text("#!/bin/sh\nexec " + " ".join(qmail.command(wrapper)) + "\n")
    wrapper.chmod(0o755)
    message, _ = make_message(sender=SENDER, to=f"bob@{DOMAIN}")
    done = submit([str(wrapper)], _lf(message), SENDER, [f"bob@{DOMAIN}"])
    assert done.status == 81
    assert queued(queue) == []


def test_usage_and_configuration_errors_are_temporary(qmail: QmailRig, tmp_path: Path) -> None:
    real, queue = qmail.standin(tmp_path)
    message, _ = make_message(sender=SENDER, to=f"bob@{DOMAIN}")
    rcpt = [f"bob@{DOMAIN}"]
    bad_flag = [sys.executable, "-m", "mailwarden", "qmail-queue", "--no-such-flag"]
    assert submit(bad_flag, _lf(message), SENDER, rcpt).status == 55
    broken = tmp_path / "broken.toml"
    broken.write_text("[qmail\n")
    assert submit(qmail.command(real, config=broken), _lf(message), SENDER, rcpt).status == 55
    assert queued(queue) == []


def test_a_large_message_is_queued_intact(qmail: QmailRig, tmp_path: Path) -> None:
    real, queue = qmail.standin(tmp_path)
    message, _ = make_message(
        sender=SENDER,
        to=f"bob@{DOMAIN}",
        attachment=b"a line of text\n" * 200_000,
        filename="notes.txt",
    )
    done = submit(qmail.command(real), _lf(message), SENDER, [f"bob@{DOMAIN}"])
    assert done.status == 0, done.stderr
    [(mess, _)] = queued(queue)
    assert mess.endswith(_lf(message).split(b"\n\n", 1)[1])
