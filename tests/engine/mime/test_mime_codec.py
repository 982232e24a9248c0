"""Transfer decoders: lenient base64 and quoted-printable, one-shot and streamed alike."""

from __future__ import annotations

import base64
import binascii

from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.engine.limits import Limits
from mailwarden.engine.mime.codec import (
    BASE64,
    IDENTITY,
    QUOTED_PRINTABLE,
    b64decode_lenient,
    decode_body,
    decode_one_shot,
    new_decoder,
    transfer_encoding,
)
from mailwarden.engine.objects import WalkContext


def test_transfer_encoding_is_lenient() -> None:
    assert transfer_encoding(" BASE64 ") == BASE64
    assert transfer_encoding('"base64"') == BASE64
    assert transfer_encoding("x-base64") == BASE64
    assert transfer_encoding("Quoted-Printable") == QUOTED_PRINTABLE
    for other in (None, "", "7bit", "8BIT", "binary", "x-unknown", "x-uuencode"):
        assert transfer_encoding(other) == IDENTITY


def test_b64_tolerates_junk_whitespace_and_missing_padding() -> None:
    raw = bytes(range(256)) * 2
    enc = base64.encodebytes(raw)
    assert b64decode_lenient(enc) == raw
    assert b64decode_lenient(enc.replace(b"=", b"")) == raw
    assert b64decode_lenient(b"!!" + enc.replace(b"\n", b"\r\n*\t") + b"##") == raw
    # a dangling sextet carries no byte
    assert b64decode_lenient(b"QUJD" + b"R") == b"ABC"


def test_b64_keeps_decoding_after_a_padding_run() -> None:
    glued = base64.b64encode(b"A") + b"\r\n" + base64.b64encode(b"BC")
    assert b64decode_lenient(glued) == b"ABC"


def test_qp_soft_breaks_and_invalid_escapes() -> None:
    assert decode_one_shot(b"a=3Db=\r\nc =ZZ=\nd", QUOTED_PRINTABLE) == b"a=bc =ZZd"


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=2000),
    st.sampled_from([BASE64, QUOTED_PRINTABLE, IDENTITY]),
    st.lists(st.integers(min_value=1, max_value=97), min_size=1, max_size=20),
)
def test_streamed_decoding_equals_one_shot(raw: bytes, enc: str, cuts: list[int]) -> None:
    if enc == BASE64:
        text = base64.encodebytes(raw)
    elif enc == QUOTED_PRINTABLE:
        text = binascii.b2a_qp(raw)
    else:
        text = raw
    dec = new_decoder(enc)
    out = []
    pos = 0
    for cut in cuts * (len(text) // sum(cuts) + 1):
        out.append(dec.feed(text[pos : pos + cut]))
        pos += cut
        if pos >= len(text):
            break
    out.append(dec.flush())
    assert b"".join(out) == decode_one_shot(text, enc) == raw


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.sampled_from([BASE64, QUOTED_PRINTABLE, IDENTITY]))
def test_junk_decodes_to_no_more_than_its_input(junk: bytes, enc: str) -> None:
    streamed = new_decoder(enc)
    out = streamed.feed(junk) + streamed.flush()
    assert len(out) <= len(junk)
    assert len(decode_one_shot(junk, enc)) <= len(junk)


def test_decode_body_spools_large_parts_and_charges_the_budget() -> None:
    raw = bytes(range(256)) * 4096  # 1 MiB
    text = b"xx" + base64.encodebytes(raw) + b"yy"
    ctx = WalkContext(Limits(spool_threshold=64 * 1024))
    out = decode_body(text, 2, len(text) - 2, BASE64, ctx)
    assert not isinstance(out, bytes)  # mapped from the spool file
    assert bytes(out) == raw
    assert ctx.budget.total_bytes == len(raw)
    ctx.close()
