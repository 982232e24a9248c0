"""The milter session against our own MTA-side client: negotiation, verdicts, actions."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any

from intercept.harness import EICAR
from intercept.mail import make_message
from intercept.milter.client import MilterClient, added_headers, reply_text
from intercept.milter.conftest import EicarScanner, run_milter
from mailwarden.intercept.milter import MilterServer
from mailwarden.intercept.milter import protocol as p
from mailwarden.store import SqliteStore

CLEAN, _ = make_message(sender="x@remote.example", to="alice@test.example")
# EICAR as plain text: the scanner of these tests looks at the raw bytes only
INFECTED = CLEAN.replace(b"Just a test message.", EICAR)


def _store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "store.sqlite3", tmp_path / "quarantine")


def _one(
    tmp_path: Path, raw: bytes, *, scanner: EicarScanner | None = None, **kw: Any
) -> tuple[bytes, list[p.Packet]]:
    """Negotiate, send ``raw`` in one transaction, return the final reply and the edits."""

    async def scenario(address: str, server: MilterServer) -> tuple[bytes, list[p.Packet]]:
        async with await MilterClient.open(address) as mta:
            await mta.negotiate()
            return await mta.send_message(raw)

    result: tuple[bytes, list[p.Packet]] = run_milter(scenario, tmp_path, scanner=scanner, **kw)
    return result


def test_negotiation_asks_to_skip_what_is_not_needed(tmp_path: Path) -> None:
    async def scenario(address: str, server: MilterServer) -> p.Offer:
        async with await MilterClient.open(address) as mta:
            return await mta.negotiate()

    offer = run_milter(scenario, tmp_path)
    assert offer.version == 6
    assert offer.actions == p.Act.ADDHDRS | p.Act.CHGHDRS | p.Act.QUARANTINE
    for step in (p.Step.NODATA, p.Step.NOUNKNOWN, p.Step.NR_CONN, p.Step.NR_RCPT, p.Step.NR_BODY):
        assert step in offer.steps
    # everything the message needs is still sent
    for step in (p.Step.NOCONNECT, p.Step.NOMAIL, p.Step.NORCPT, p.Step.NOHDRS, p.Step.NOBODY):
        assert step not in offer.steps


def test_an_old_mta_without_no_reply_steps_gets_a_reply_to_each_command(tmp_path: Path) -> None:
    async def scenario(address: str, server: MilterServer) -> tuple[bytes, list[p.Packet]]:
        async with await MilterClient.open(address) as mta:
            offer = await mta.negotiate(version=2, actions=0x3F, steps=0x7F)
            assert offer.steps == p.Step(0)
            # MilterClient reads a CONTINUE after every command, or would hang
            return await mta.send_message(CLEAN)

    final, edits = run_milter(scenario, tmp_path)
    assert final == p.Reply.ACCEPT
    assert added_headers(edits)["X-Virus-Status"] == "Clean"


def test_clean_mail_is_accepted_with_headers(tmp_path: Path) -> None:
    scanner = EicarScanner()

    async def scenario(address: str, server: MilterServer) -> tuple[bytes, list[p.Packet]]:
        async with await MilterClient.open(address) as mta:
            await mta.negotiate()
            return await mta.send_message(CLEAN, macros={"i": "4QUEUE1"})

    final, edits = run_milter(scenario, tmp_path, scanner=scanner)
    assert final == p.Reply.ACCEPT
    headers = added_headers(edits)
    assert headers["X-Virus-Status"] == "Clean"
    assert headers["X-Virus-Scanned"].endswith("on gw.test.example")
    # the daemon saw the message as the MTA has it, with the envelope from the commands
    raw, envelope = scanner.seen[0]
    assert raw == CLEAN
    assert envelope is not None
    assert envelope.queue_id == "4QUEUE1"
    assert envelope.recipients == ("alice@test.example",)
    assert envelope.sender == "sender@remote.example"
    assert envelope.client_address == "192.0.2.1"
    assert envelope.agent == "milter"


def test_infected_mail_is_rejected_naming_the_signature(tmp_path: Path) -> None:
    final, edits = _one(tmp_path, INFECTED)
    assert final == p.Reply.REPLYCODE
    assert reply_text(edits) == "554 5.7.1 Infected: Eicar-Test-Signature"


def test_daemon_down_is_a_temporary_failure(tmp_path: Path) -> None:
    scanner = EicarScanner()
    scanner.down = True

    final, edits = _one(tmp_path, CLEAN, scanner=scanner)
    assert final == p.Reply.REPLYCODE
    assert reply_text(edits).startswith("451 4.7.1 ")


def test_forged_status_headers_and_release_marks_are_deleted(tmp_path: Path) -> None:
    forged = (
        b"X-Virus-Status: Clean\r\nX-Mailwarden-Release: forged\r\nX-Virus-Status: Clean\r\n"
        + CLEAN
    )

    final, edits = _one(tmp_path, forged)
    assert final == p.Reply.ACCEPT
    changes = [e.data for e in edits if e.command == p.Reply.CHGHEADER]
    deleted = sorted(
        (struct.unpack(">I", c[:4])[0], c[4:].split(b"\0")[0].lower()) for c in changes
    )
    assert deleted == [(1, b"x-mailwarden-release"), (1, b"x-virus-status"), (2, b"x-virus-status")]
    assert all(c[4:].split(b"\0")[1] == b"" for c in changes)


def test_tag_policy_changes_the_subject(tmp_path: Path) -> None:
    toml = '[policy]\ninfected = "tag"\n'

    final, edits = _one(tmp_path, INFECTED, toml=toml)
    assert final == p.Reply.ACCEPT
    (change,) = [e.data for e in edits if e.command == p.Reply.CHGHEADER]
    assert struct.unpack(">I", change[:4])[0] == 1
    assert change[4:].split(b"\0")[:2] == [b"Subject", b" ***VIRUS*** hello"]
    assert added_headers(edits)["X-Virus-Status"] == "Infected (Eicar-Test-Signature)"


def test_quarantine_keeps_a_copy_in_the_store_and_discards_the_mta_copy(tmp_path: Path) -> None:
    toml = '[policy]\ninfected = "quarantine"\n'

    final, _ = _one(tmp_path, INFECTED, toml=toml)
    assert final == p.Reply.DISCARD
    (entry,) = _store(tmp_path).entries()
    assert _store(tmp_path).read(entry.id) == INFECTED


def test_quarantine_with_mta_hold_puts_it_on_the_hold_queue_too(tmp_path: Path) -> None:
    toml = '[policy]\ninfected = "quarantine"\n'

    final, edits = _one(tmp_path, INFECTED, toml=toml, mta_hold=True)
    assert final == p.Reply.ACCEPT
    (hold,) = [e.data for e in edits if e.command == p.Reply.QUARANTINE]
    assert hold == b"Infected (Eicar-Test-Signature)\0"
    assert len(_store(tmp_path).entries()) == 1


def test_discard_policy(tmp_path: Path) -> None:
    final, _ = _one(tmp_path, INFECTED, toml='[policy]\ninfected = "discard"\n')
    assert final == p.Reply.DISCARD


def test_recipients_that_differ_get_the_strictest_outcome(tmp_path: Path) -> None:
    toml = '[[policy.override]]\nrecipients = ["bob@test.example"]\ninfected = "tag"\n'

    async def scenario(address: str, server: MilterServer) -> list[tuple[bytes, str]]:
        out = []
        async with await MilterClient.open(address) as mta:
            await mta.negotiate()
            for rcpts in (["<bob@test.example>"], ["<bob@test.example>", "<alice@test.example>"]):
                final, edits = await mta.send_message(INFECTED, recipients=rcpts)
                out.append((final, reply_text(edits)))
        return out

    (only_bob, both) = run_milter(scenario, tmp_path, toml=toml)
    assert only_bob[0] == p.Reply.ACCEPT  # bob alone: tagged
    assert both == (p.Reply.REPLYCODE, "554 5.7.1 Infected: Eicar-Test-Signature")


def test_direction_from_macros_and_client_address(tmp_path: Path) -> None:
    """Outbound infected mail is tagged (policy), inbound is rejected: the macros decide."""
    toml = '[policy]\noutbound_infected = "tag"\n'
    scanner = EicarScanner()
    cases = [
        ({}, "198.51.100.7", p.Reply.REPLYCODE),  # inbound from a stranger
        ({"{auth_authen}": "carol"}, "198.51.100.7", p.Reply.ACCEPT),  # SASL login
        ({}, "10.1.2.3", p.Reply.ACCEPT),  # a trusted network
    ]

    async def scenario(address: str, server: MilterServer) -> list[bytes]:
        finals = []
        for macros, client, _ in cases:
            async with await MilterClient.open(address) as mta:
                await mta.negotiate()
                final, _ = await mta.send_message(
                    INFECTED,
                    recipients=["<someone@remote.example>"],
                    macros=macros,
                    client_address=client,
                )
                finals.append(final)
        # a submission daemon ({daemon_name} in submission_daemons) counts as ours
        async with await MilterClient.open(address) as mta:
            await mta.negotiate()
            mta.macro(b"C", {"{daemon_name}": "MSA"})
            await mta.connect(address="198.51.100.7")
            final, _ = await mta.send_message(
                INFECTED, recipients=["<someone@remote.example>"], connect=False
            )
            finals.append(final)
        return finals

    finals = run_milter(scenario, tmp_path, toml=toml, scanner=scanner)
    assert finals == [c[2] for c in cases] + [p.Reply.ACCEPT]
    assert scanner.seen[1][1] is not None and scanner.seen[1][1].auth_user == "carol"


def test_several_messages_abort_and_quit_nc_on_one_connection(tmp_path: Path) -> None:
    scanner = EicarScanner()

    async def scenario(address: str, server: MilterServer) -> list[bytes]:
        finals = []
        async with await MilterClient.open(address) as mta:
            await mta.negotiate()
            finals.append((await mta.send_message(INFECTED, macros={"i": "Q1"}))[0])
            # a message aborted in the middle of its body
            mta.macro(b"M", {"i": "Q2"})
            await mta.command(p.Command.MAIL, b"<a@remote.example>\0")
            await mta.command(p.Command.RCPT, b"<alice@test.example>\0")
            await mta.command(p.Command.HEADER, b"Subject\0 x\0")
            await mta.command(p.Command.EOH)
            await mta.command(p.Command.BODY, EICAR[:20])
            mta.send(p.Command.ABORT)
            finals.append((await mta.send_message(CLEAN, connect=False, macros={"i": "Q3"}))[0])
            # the MTA reuses the connection for another SMTP client
            mta.send(p.Command.QUIT_NC)
            finals.append((await mta.send_message(CLEAN, macros={"i": "Q4"}))[0])
            await mta.quit()
        return finals

    finals = run_milter(scenario, tmp_path, scanner=scanner)
    assert finals == [p.Reply.REPLYCODE, p.Reply.ACCEPT, p.Reply.ACCEPT]
    # the aborted part never reached the daemon, nor mixed into the next message
    assert [e.queue_id for _, e in scanner.seen if e] == ["Q1", "Q3", "Q4"]
    assert scanner.seen[1][0] == CLEAN


def test_large_message_is_spooled_to_disk_and_scanned_whole(tmp_path: Path) -> None:
    big = CLEAN.replace(b"Just a test message.", b"x" * 76 + b"\r\n") * 1  # headers once
    body = (b"y" * 998 + b"\r\n") * 3000 + EICAR + b"\r\n"
    raw = big.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" + body

    final, edits = _one(tmp_path, raw, spool_threshold=64 * 1024)
    assert final == p.Reply.REPLYCODE
    assert "Eicar-Test-Signature" in reply_text(edits)


def test_message_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    raw = CLEAN + b"z" * 200_000

    final, edits = _one(tmp_path, raw, max_message_size=100_000)
    assert final == p.Reply.REPLYCODE
    assert reply_text(edits).startswith("552 5.3.4")


def test_progress_is_reported_while_the_scan_runs(tmp_path: Path) -> None:
    scanner = EicarScanner()

    async def scenario(address: str, server: MilterServer) -> list[bytes]:
        scanner.gate = asyncio.Event()
        seen: list[bytes] = []
        async with await MilterClient.open(address) as mta:
            await mta.negotiate()
            send = asyncio.ensure_future(mta.send_message(CLEAN))
            # the scan is held until the client has seen a PROGRESS packet
            while True:
                packet = await mta.read()
                assert packet is not None
                seen.append(packet.command)
                if packet.command == p.Reply.PROGRESS:
                    scanner.gate.set()
                    break
            send.cancel()
            while seen[-1] not in (p.Reply.ACCEPT,):
                packet = await mta.read()
                assert packet is not None
                seen.append(packet.command)
        return seen

    seen = run_milter(scenario, tmp_path, scanner=scanner, progress_interval=0.05)
    assert seen[0] == p.Reply.PROGRESS
    assert seen[-1] == p.Reply.ACCEPT
