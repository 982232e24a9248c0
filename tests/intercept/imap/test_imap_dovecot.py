"""The IMAP proxy in front of a real Dovecot, driven with imaplib and raw IMAP: clean
content byte for byte in every spelling of a fetch, infected messages replaced with
consistent sizes, flags and UIDs unchanged, literals, pipelining, IDLE, capabilities,
per-user policy, TLS on both sides, and the daemon down."""

from __future__ import annotations

import email
import imaplib
import re
import socket
import ssl

from support.dovecot import EICAR, PASSWORD, ProxyRig, login

CLEAN = (1, 3, 5)
INFECTED = 2
TINY = 4
#: content fetches whose answer must be byte for byte Dovecot's for a clean message
SPELLINGS = (
    "BODY.PEEK[]",
    "BODY.PEEK[HEADER]",
    "BODY.PEEK[TEXT]",
    "BODY.PEEK[1]",
    "BODY.PEEK[]<0.100>",
    "BODY.PEEK[]<100.50>",
    "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]",
    "BINARY.PEEK[]",
    "RFC822.HEADER",
)


def connect(
    port: int, user: str, *, mailbox: str = "INBOX", readonly: bool = True
) -> imaplib.IMAP4:
    box = imaplib.IMAP4("127.0.0.1", port, timeout=30)
    box.login(login(user), PASSWORD)
    box.select(mailbox, readonly=readonly)
    return box


def fetch(box: imaplib.IMAP4, uid: int, items: str) -> list[object]:
    typ, data = box.uid("FETCH", str(uid), f"({items})")
    assert typ == "OK", data
    return data


def content(box: imaplib.IMAP4, uid: int, item: str) -> bytes:
    data = fetch(box, uid, item)
    first = data[0]
    assert isinstance(first, tuple), data
    return first[1]


def test_clean_content_is_byte_for_byte_dovecots_in_every_spelling(imap: ProxyRig) -> None:
    direct, proxied = connect(imap.direct, "alice"), connect(imap.port, "alice")
    try:
        for uid in CLEAN:
            for item in SPELLINGS:
                assert fetch(proxied, uid, item) == fetch(direct, uid, item), (uid, item)
            assert fetch(proxied, uid, "UID RFC822.SIZE BODYSTRUCTURE ENVELOPE") == fetch(
                direct, uid, "UID RFC822.SIZE BODYSTRUCTURE ENVELOPE"
            )
    finally:
        direct.logout()
        proxied.logout()


def test_an_infected_message_arrives_as_a_warning_with_consistent_sizes(imap: ProxyRig) -> None:
    box = connect(imap.port, "alice")
    try:
        whole = content(box, INFECTED, "BODY.PEEK[]")
        size = int(
            re.search(rb"RFC822.SIZE (\d+)", fetch(box, INFECTED, "RFC822.SIZE")[0]).group(1)
        )  # type: ignore[arg-type,union-attr]
        pieces = b"".join(
            content(box, INFECTED, f"BODY.PEEK[]<{o}.700>") for o in range(0, size, 700)
        )
        text = content(box, INFECTED, "BODY.PEEK[TEXT]")
        structure = fetch(box, INFECTED, "BODYSTRUCTURE")[0]
    finally:
        box.logout()
    assert EICAR not in whole and b"eicar.com" not in whole
    assert len(whole) == size
    assert pieces == whole
    assert whole.endswith(text)
    assert b'"text" "plain"' in structure  # type: ignore[operator]
    warning = email.message_from_bytes(whole)
    assert warning["Subject"] == "infected message 1"
    assert warning["Message-ID"] == "<infected-1@example.net>"
    assert "Eicar" in warning["X-Virus-Status"]


def flags(box: imaplib.IMAP4, uid: int) -> set[bytes]:
    """The message's flags, without the per-session \\Recent."""
    for item in fetch(box, uid, "UID FLAGS"):
        match = re.search(rb"UID %d FLAGS \(([^)]*)\)" % uid, item)  # type: ignore[call-overload]
        if match:
            return set(match.group(1).split()) - {b"\\Recent"}
    raise AssertionError(f"no flags for {uid}")


def test_flags_and_uids_are_dovecots(imap: ProxyRig) -> None:
    proxied = connect(imap.port, "carol", readonly=False)
    try:
        # a non-PEEK fetch through the proxy marks the message seen, as it would directly
        content(proxied, INFECTED, "BODY[]")
        content(proxied, 1, "RFC822")
        typ, _ = proxied.uid("STORE", "3", "+FLAGS", "(\\Flagged)")
        assert typ == "OK"
        seen_through = {uid: flags(proxied, uid) for uid in range(1, 6)}
        searched = proxied.uid("SEARCH", "ALL")
    finally:
        proxied.logout()
    direct = connect(imap.direct, "carol")
    try:
        assert {uid: flags(direct, uid) for uid in range(1, 6)} == seen_through
        assert direct.uid("SEARCH", "ALL") == searched
    finally:
        direct.logout()
    assert seen_through[INFECTED] == {b"\\Seen"}
    assert seen_through[1] == {b"\\Seen"}
    assert seen_through[3] == {b"\\Flagged"}


def test_capabilities_the_proxy_cannot_honour_are_removed(imap: ProxyRig) -> None:
    box = imaplib.IMAP4("127.0.0.1", imap.port, timeout=30)
    assert "STARTTLS" in box.capabilities
    box.login(login("alice"), PASSWORD)
    typ, data = box.capability()
    caps = data[0].split()  # type: ignore[union-attr]
    for dropped in (b"COMPRESS=DEFLATE", b"NOTIFY", b"URLAUTH", b"PREVIEW", b"SNIPPET=FUZZY"):
        assert dropped not in caps
    assert b"IDLE" in caps and b"LITERAL+" in caps
    typ, data = box.xatom("COMPRESS", "DEFLATE")
    assert typ == "NO"
    box.logout()


def raw_session(port: int) -> tuple[socket.socket, object]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    reader = sock.makefile("rb")
    assert reader.readline().startswith(b"* OK")
    return sock, reader


def until_tag(reader: object, tag: bytes) -> list[bytes]:
    lines = []
    while True:
        line = reader.readline()  # type: ignore[attr-defined]
        assert line, lines
        lines.append(line)
        if line.startswith(tag + b" "):
            return lines


def test_literals_pipelining_and_idle(imap: ProxyRig) -> None:
    sock, reader = raw_session(imap.port)
    user = login("alice").encode()
    # a synchronizing literal for the user name: the server's "+" reaches us
    sock.sendall(b"a1 LOGIN {%d}\r\n" % len(user))
    assert reader.readline().startswith(b"+")  # type: ignore[attr-defined]
    sock.sendall(user + b" {%d+}\r\n%s\r\n" % (len(PASSWORD), PASSWORD.encode()))
    assert until_tag(reader, b"a1")[-1].startswith(b"a1 OK")
    # three commands at once, answered in order
    sock.sendall(
        b"a2 EXAMINE INBOX\r\na3 UID FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\na4 NOOP\r\n"
    )
    assert until_tag(reader, b"a2")[-1].startswith(b"a2 OK")
    fetched = until_tag(reader, b"a3")
    assert b"Subject: clean message 1\r\n" in b"".join(fetched)
    assert until_tag(reader, b"a4")[-1].startswith(b"a4 OK")
    sock.sendall(b"a5 IDLE\r\n")
    assert reader.readline().startswith(b"+")  # type: ignore[attr-defined]
    sock.sendall(b"DONE\r\n")
    assert until_tag(reader, b"a5")[-1].startswith(b"a5 OK")
    sock.sendall(b"a6 LOGOUT\r\n")
    assert until_tag(reader, b"a6")[-1].startswith(b"a6 OK")
    sock.close()


def test_append_with_a_literal_then_fetch_it_back(imap: ProxyRig) -> None:
    box = connect(imap.port, "dave", readonly=False)
    raw = b"From: a@example.net\r\nSubject: appended\r\n\r\nappended body\r\n"
    try:
        typ, data = box.append("INBOX", None, None, raw)
        assert typ == "OK", data
        box.select("INBOX", readonly=True)
        typ, found = box.uid("SEARCH", "SUBJECT", "appended")
        uid = int(found[0].split()[-1])  # type: ignore[union-attr]
        assert content(box, uid, "BODY.PEEK[]") == raw
    finally:
        box.logout()


def test_the_login_name_selects_the_users_policy(imap: ProxyRig) -> None:
    box = connect(imap.port, "bob")
    try:
        data = content(box, INFECTED, "BODY.PEEK[]")
        size = fetch(box, INFECTED, "RFC822.SIZE")[0]
    finally:
        box.logout()
    assert data.startswith(b"X-Virus-Scanned:")
    assert b"Subject: ***VIRUS*** infected message 1" in data
    assert b"RFC822.SIZE %d" % len(data) in size  # type: ignore[operator]


def test_starttls_and_implicit_tls_with_the_proxys_certificate(imap: ProxyRig) -> None:
    ctx = ssl.create_default_context(cafile=str(imap.certs.ca))
    box = imaplib.IMAP4("127.0.0.1", imap.port, timeout=30)
    box.starttls(ctx)
    assert "STARTTLS" not in box.capabilities
    box.login(login("alice"), PASSWORD)
    box.select("INBOX", readonly=True)
    assert b"clean message 1" in content(box, 1, "BODY.PEEK[]")
    box.logout()
    secure = imaplib.IMAP4_SSL("127.0.0.1", imap.tls_port, ssl_context=ctx, timeout=30)
    secure.login(login("alice"), PASSWORD)
    secure.select("INBOX", readonly=True)
    assert EICAR not in content(secure, INFECTED, "BODY.PEEK[]")
    secure.logout()


def test_daemon_down_answers_no_and_serves_nothing(imap: ProxyRig) -> None:
    port = imap.extra_proxy("imap-nodaemon", daemon_socket=str(imap.stack.root / "none"))
    box = connect(port, "alice")
    try:
        typ, data = box.uid("FETCH", "1:5", "(FLAGS BODY.PEEK[])")
        assert typ == "NO"
        assert b"UNAVAILABLE" in data[0]  # type: ignore[operator]
        typ, data = box.uid("FETCH", "1:5", "(UID FLAGS)")  # no content: no scan needed
        assert typ == "OK" and len(data) == 5
    finally:
        box.logout()


def test_unsolicited_flag_updates_reach_the_client(imap: ProxyRig) -> None:
    watcher = connect(imap.port, "dave", readonly=False)
    other = connect(imap.direct, "dave", readonly=False)
    try:
        other.uid("STORE", "5", "+FLAGS", "(\\Answered)")
        typ, _ = watcher.noop()
        assert typ == "OK"
        updates = watcher.untagged_responses.get("FETCH", [])
        assert any(b"\\Answered" in u for u in updates if isinstance(u, bytes)), updates
    finally:
        other.logout()
        watcher.logout()


def test_authenticate_plain_gives_the_login_name_to_the_policy(imap: ProxyRig) -> None:
    box = imaplib.IMAP4("127.0.0.1", imap.port, timeout=30)
    secret = f"\0{login('bob')}\0{PASSWORD}".encode()
    typ, _ = box.authenticate("PLAIN", lambda _challenge: secret)
    assert typ == "OK"
    box.select("INBOX", readonly=True)
    try:
        data = content(box, INFECTED, "BODY.PEEK[]")
    finally:
        box.logout()
    assert b"Subject: ***VIRUS*** infected message 1" in data  # bob's policy: tag


def test_implicit_tls_to_the_server(imap: ProxyRig) -> None:
    port = imap.extra_proxy(
        "imap-imaps",
        daemon_socket=imap.stack.socket,
        changes={
            f'server = "127.0.0.1:{imap.dovecot.ports["imap"]}"': (
                f'server = "127.0.0.1:{imap.dovecot.ports["imaps"]}"'
            ),
            'server_tls = "starttls"': 'server_tls = "tls"',
        },
    )
    box = connect(port, "alice")
    try:
        assert EICAR not in content(box, INFECTED, "BODY.PEEK[]")
        assert b"clean message 1" in content(box, 1, "BODY.PEEK[]")
    finally:
        box.logout()
