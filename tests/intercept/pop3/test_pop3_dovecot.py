"""The POP3 proxy in front of a real Dovecot, driven with poplib: clean messages byte
for byte, infected ones replaced with consistent sizes, TOP, per-user policy, TLS on
both sides, and the daemon down (nothing served unscanned)."""

from __future__ import annotations

import base64
import email
import poplib
import ssl

import pytest

from support.dovecot import EICAR, PASSWORD, ProxyRig, login, make_certs

CLEAN = (1, 3, 5)
INFECTED = 2
TINY = 4


def connect(port: int, user: str) -> poplib.POP3:
    box = poplib.POP3("127.0.0.1", port, timeout=30)
    box.user(login(user))
    box.pass_(PASSWORD)
    return box


def retr(box: poplib.POP3, n: int) -> tuple[bytes, bytes]:
    status, lines, _ = box.retr(n)
    return status, b"\r\n".join(lines) + b"\r\n"


def test_clean_messages_pass_byte_for_byte(pop3: ProxyRig) -> None:
    direct, proxied = connect(pop3.direct, "alice"), connect(pop3.port, "alice")
    try:
        for n in CLEAN:
            assert retr(proxied, n) == retr(direct, n)
            assert proxied.top(n, 1)[1] == direct.top(n, 1)[1]
            assert proxied.top(n, 0)[1] == direct.top(n, 0)[1]
    finally:
        direct.quit()
        proxied.quit()


def test_an_infected_message_arrives_as_a_warning_of_the_same_size(pop3: ProxyRig) -> None:
    box = connect(pop3.port, "alice")
    try:
        listed = int(box.list(INFECTED).split()[2])
        status, data = retr(box, INFECTED)
    finally:
        box.quit()
    assert EICAR not in data
    assert status == b"+OK %d octets" % len(data)
    assert len(data) == listed
    warning = email.message_from_bytes(data)
    assert warning["Subject"] == "infected message 1"
    assert warning["Message-ID"] == "<infected-1@example.net>"
    assert warning["From"] == "Mallory <mallory@example.net>"
    assert warning["Date"] == "Fri, 27 Nov 2026 11:00:00 +0000"
    assert "Eicar" in warning["X-Virus-Status"]
    assert warning.get_content_type() == "text/plain"
    assert "Eicar" in warning.get_payload()


def test_list_stat_and_uidl_match_what_the_client_receives(pop3: ProxyRig) -> None:
    direct, box = connect(pop3.direct, "carol"), connect(pop3.port, "carol")
    try:
        assert box.uidl()[1] == direct.uidl()[1]
        # before anything was fetched the sizes are the server's
        assert box.list()[1] == direct.list()[1]
        server = {int(a): int(b) for a, b in (x.split() for x in direct.list()[1])}
        replaced = {n: len(retr(box, n)[1]) for n in (INFECTED, TINY)}
        for n in CLEAN:
            retr(box, n)
        listing = {int(a): int(b) for a, b in (x.split() for x in box.list()[1])}
        assert listing == {**server, **replaced}
        count, total = box.stat()
        assert (count, total) == (5, sum(listing.values()))
        # the tiny message does not leave room for the warning: its size changed
        assert replaced[TINY] != int(direct.list(TINY).split()[2])
        assert EICAR not in retr(box, TINY)[1]
        assert b"Subject: tiny" in box.top(TINY, 0)[1]
    finally:
        direct.quit()
        box.quit()


def test_top_of_an_infected_message_is_the_top_of_the_warning(pop3: ProxyRig) -> None:
    box = connect(pop3.port, "alice")
    try:
        head = b"\r\n".join(box.top(INFECTED, 0)[1])
        whole = retr(box, INFECTED)[1]
    finally:
        box.quit()
    assert whole.startswith(head)
    assert b"Content-Type: text/plain" in head
    assert b"multipart" not in head


def test_the_login_name_selects_the_users_policy(pop3: ProxyRig) -> None:
    box = connect(pop3.port, "bob")
    try:
        data = retr(box, INFECTED)[1]
        listed = int(box.list(INFECTED).split()[2])
    finally:
        box.quit()
    tagged = email.message_from_bytes(data)
    assert tagged["Subject"].startswith("***VIRUS***")
    assert tagged["X-Virus-Status"].startswith("Infected")
    assert b"eicar.com" in data  # the policy says tag: the reader gets the original, marked
    assert listed == len(data)


def test_stls_and_implicit_tls_with_the_proxys_certificate(pop3: ProxyRig) -> None:
    ctx = ssl.create_default_context(cafile=str(pop3.certs.ca))
    box = poplib.POP3("127.0.0.1", pop3.port, timeout=30)
    assert "STLS" in box.capa()
    box.stls(ctx)
    assert "STLS" not in box.capa()
    box.user(login("alice"))
    box.pass_(PASSWORD)
    assert b"clean message 1" in retr(box, 1)[1]
    box.quit()
    secure = poplib.POP3_SSL("127.0.0.1", pop3.tls_port, context=ctx, timeout=30)
    secure.user(login("alice"))
    secure.pass_(PASSWORD)
    assert EICAR not in retr(secure, INFECTED)[1]
    secure.quit()


def test_daemon_down_gives_err_for_every_message_never_the_message(pop3: ProxyRig) -> None:
    port = pop3.extra_proxy("pop3-nodaemon", daemon_socket=str(pop3.stack.root / "none"))
    box = connect(port, "alice")
    try:
        for n in (1, INFECTED):
            with pytest.raises(poplib.error_proto, match=r"SYS/TEMP.*could not be scanned"):
                box.retr(n)
        with pytest.raises(poplib.error_proto, match="could not be scanned"):
            box.top(1, 0)
        assert box.noop().startswith(b"+OK")  # the session goes on
    finally:
        box.quit()


def test_on_failure_warning_serves_a_warning_instead(pop3: ProxyRig) -> None:
    port = pop3.extra_proxy(
        "pop3-warn",
        daemon_socket=str(pop3.stack.root / "none"),
        changes={'server_tls = "starttls"': 'server_tls = "starttls"\non_failure = "warning"'},
    )
    box = connect(port, "alice")
    try:
        data = retr(box, 1)[1]
    finally:
        box.quit()
    assert b"clean message 1" in data  # the original's Subject is kept
    assert b"Hello, message 1." not in data
    assert b"X-Virus-Status: Unscanned" in data


def test_a_server_with_an_untrusted_certificate_is_refused(pop3: ProxyRig) -> None:
    wrong = make_certs(pop3.stack.root / "other-ca")  # not the CA that signed Dovecot's
    port = pop3.extra_proxy(
        "pop3-badca",
        daemon_socket=pop3.stack.socket,
        changes={f'server_ca_file = "{pop3.certs.ca}"': f'server_ca_file = "{wrong.ca}"'},
    )
    # the proxy's STLS to Dovecot fails verification before any greeting is relayed
    with pytest.raises(poplib.error_proto, match=r"SYS/TEMP"):
        poplib.POP3("127.0.0.1", port, timeout=30)


def test_auth_plain_gives_the_login_name_to_the_policy(pop3: ProxyRig) -> None:
    box = poplib.POP3("127.0.0.1", pop3.port, timeout=30)
    token = base64.b64encode(f"\0{login('bob')}\0{PASSWORD}".encode())
    assert box._shortcmd("AUTH PLAIN " + token.decode()).startswith(b"+OK")
    try:
        data = retr(box, INFECTED)[1]
    finally:
        box.quit()
    assert b"Subject: ***VIRUS*** infected message 1" in data


def test_infected_original_delete_removes_it_at_quit(pop3: ProxyRig) -> None:
    port = pop3.extra_proxy(
        "pop3-delete",
        daemon_socket=pop3.stack.socket,
        changes={
            'server_tls = "starttls"': 'server_tls = "starttls"\ninfected_original = "delete"'
        },
    )
    before = connect(pop3.direct, "dave")
    uids = before.uidl()[1]
    before.quit()
    box = connect(port, "dave")
    try:
        assert EICAR not in retr(box, INFECTED)[1]
        assert b"clean message 1" in retr(box, 1)[1]
        assert box.dele(INFECTED).startswith(b"+OK")  # the client's own DELE: already done
    finally:
        box.quit()
    after = connect(pop3.direct, "dave")
    try:
        remaining = after.uidl()[1]
    finally:
        after.quit()
    assert remaining != uids and len(remaining) == 4
    assert uids[INFECTED - 1].split()[1] not in [u.split()[1] for u in remaining]
