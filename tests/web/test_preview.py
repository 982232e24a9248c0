"""Message preview: headers decoded and cleaned, parts as a tree, hostile input bounded."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.web import preview as pv
from mailwarden.web.preview import preview


def test_nested_message_parts_are_numbered_like_findings() -> None:
    raw = (
        b"Subject: outer\nContent-Type: multipart/mixed; boundary=a\n\n--a\n"
        b"Content-Type: text/plain\n\nhello\n--a\nContent-Type: message/rfc822\n\n"
        b"Subject: inner\nContent-Type: multipart/alternative; boundary=b\n\n--b\n"
        b"Content-Type: text/html\n\n<b>x</b>\n--b--\n--a--\n"
    )
    view = preview(raw)
    assert [(p.path, p.depth, p.content_type) for p in view.parts] == [
        ("", 0, "multipart/mixed"),
        ("1", 1, "text/plain"),
        ("2", 1, "message/rfc822"),
        ("2.1", 2, "multipart/alternative"),
        ("2.1.1", 3, "text/html"),
    ]
    assert view.parts[4].text == "<b>x</b>" and "HTML source" in view.parts[4].note


def test_control_and_bidi_characters_are_replaced() -> None:
    view = preview("Subject: a\u202eb\x1bc\n\nbody\x07\n".encode())
    assert ("Subject", "a?b?c") in view.headers
    assert view.parts[0].text == "body?"


def test_deep_wide_and_long_input_is_bounded() -> None:
    deep = b"".join(
        f"Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n".encode() for i in range(60)
    )
    view = preview(deep)
    assert max(p.depth for p in view.parts) < pv.MAX_DEPTH
    wide = b"Content-Type: multipart/mixed; boundary=w\n\n" + b"--w\n\nx\n" * 2000 + b"--w--\n"
    view = preview(wide)
    assert len(view.parts) == pv.MAX_PARTS
    assert any("first 500 parts" in n for n in view.notes)
    long_text = b"Subject: x\n\n" + b"y" * (pv.MAX_TEXT * 3)
    part = preview(long_text).parts[0]
    assert part.text is not None and len(part.text) == pv.MAX_TEXT


def test_garbage_does_not_crash() -> None:
    for raw in (
        b"",
        b"\x00\xff" * 1000,
        b"Content-Type: text/plain; charset=nope\n\n\xe9t\xe9",
        b"Content-Transfer-Encoding: base64\n\n!!!!",
        b"=?x?q?bad?= \n\n",
    ):
        view = preview(raw)
        assert view.parts


_PIECES = [
    b"Content-Type: multipart/mixed; boundary=z\n",
    b"Content-Type: message/rfc822\n",
    b'Content-Type: text/html; charset="x-unknown"\n',
    b"Content-Transfer-Encoding: base64\n",
    b"Content-Transfer-Encoding: quoted-printable\n",
    b"Content-Disposition: attachment; filename*=utf-8''%FF%FE\n",
    b"Subject: =?utf-8?b?////?=\n",
    b"\n",
    b"--z\n",
    b"--z--\n",
    b"=FF=\n",
    b"\xff\xfe\x00",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES) | st.binary(max_size=40), max_size=40))
def test_any_mixture_of_mime_pieces_gives_a_view(pieces: list[bytes]) -> None:
    view = preview(b"".join(pieces))
    assert view.parts
    for part in view.parts:
        assert part.text is None or len(part.text) <= pv.MAX_TEXT
