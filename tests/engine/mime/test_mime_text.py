"""The text extractor: uuencoded blocks and data: URIs."""

from __future__ import annotations

import base64
import binascii
import urllib.parse

from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.engine.limits import Limits
from mailwarden.engine.mime import extract_text
from mailwarden.engine.objects import Child, ScanObject, WalkContext

PAYLOAD = b"MZ\x90\x00" + bytes(range(256)) * 2


def _text(raw: bytes, limits: Limits | None = None) -> tuple[list[Child], WalkContext]:
    ctx = WalkContext(limits or Limits())
    return list(extract_text(ScanObject(raw), ctx)), ctx


def _uuencode(data: bytes) -> bytes:
    return b"".join(binascii.b2a_uu(data[i : i + 45]) for i in range(0, len(data), 45))


def test_plain_text_yields_nothing() -> None:
    assert _text(b"Dear customer, please begin the data migration.\n" * 100)[0] == []


def test_uuencoded_block_is_decoded_under_its_name() -> None:
    raw = (
        b"see below\r\n\r\nbegin 644 tool.exe\r\n"
        + _uuencode(PAYLOAD).replace(b"\n", b"\r\n")
        + b"`\r\nend\r\ntrailing words\r\n"
    )
    children, _ = _text(raw)
    assert [(c.label, c.name) for c in children] == [("tool.exe", "tool.exe")]
    assert bytes(children[0].data) == PAYLOAD


def test_uuencoded_block_without_end_and_two_blocks() -> None:
    raw = (
        b"begin 600 a.bin\n" + _uuencode(b"first") + b"`\nend\n"
        b"begin 644 dir/b.bin\n" + _uuencode(PAYLOAD) + b"not uuencoded at all\n"
    )
    children, _ = _text(raw)
    assert [(c.label, bytes(c.data)) for c in children] == [
        ("a.bin", b"first"),
        ("dir_b.bin", PAYLOAD),
    ]


def test_begin_base64_block() -> None:
    raw = b"begin-base64 644 s.sh\n" + base64.encodebytes(PAYLOAD) + b"====\n"
    children, _ = _text(raw)
    assert [(c.label, bytes(c.data)) for c in children] == [("s.sh", PAYLOAD)]


def test_data_uris_base64_and_percent_encoded() -> None:
    b64 = base64.b64encode(PAYLOAD)
    pct = urllib.parse.quote_from_bytes(b"<script>alert(1)</script>")
    raw = (
        b'<html><img src="data:image/png;base64,' + b64 + b'">'
        b"<a href='DATA:text/html;charset=utf-8," + pct.encode() + b"'>x</a>"
        b"<style>b{background:url(data:application/x-foo;base64,"
        + urllib.parse.quote_from_bytes(b64).encode()
        + b")}</style></html>"
    )
    children, _ = _text(raw)
    assert [(c.label, c.content_type) for c in children] == [
        ("data-1", "image/png"),
        ("data-2", "text/html"),
        ("data-3", "application/x-foo"),
    ]
    assert bytes(children[0].data) == PAYLOAD
    assert bytes(children[1].data) == b"<script>alert(1)</script>"
    assert bytes(children[2].data) == PAYLOAD


def test_child_count_is_limited_and_reported() -> None:
    raw = b"".join(b'<img src="data:,x%d">' % i for i in range(30))
    children, ctx = _text(raw, Limits(max_mime_parts=10))
    assert len(children) == 10
    assert ctx.unscanned_notes == [("", "more than 10 encoded blocks")]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    b"begin 644 x\n",
                    b"begin-base64 644 y\n",
                    b"====\n",
                    b"end\n",
                    b"`\n",
                    b"M86)C\n",
                    b"data:",
                    b";base64,",
                    b"text/html,",
                    b"%41",
                    b'"',
                    b"\n",
                ]
            ),
            st.binary(max_size=30),
        ),
        max_size=40,
    )
)
def test_fuzz_never_raises_and_output_is_bounded(pieces: list[bytes]) -> None:
    raw = b"".join(pieces)
    children, _ = _text(raw, Limits(max_mime_parts=20))
    assert len(children) <= 20
    for child in children:
        assert 0 < len(child.data) <= len(raw)
