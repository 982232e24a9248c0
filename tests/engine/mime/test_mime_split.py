"""The MIME splitter on hostile structure: limits, huge headers, nesting, fuzz."""

from __future__ import annotations

import base64
import email
import email.policy
from email.message import EmailMessage

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailwarden.engine.limits import LimitExceeded, Limits
from mailwarden.engine.mime import extract_mail
from mailwarden.engine.objects import Child, ScanObject, WalkContext


def _split(raw: bytes, limits: Limits | None = None) -> tuple[list[Child], WalkContext]:
    ctx = WalkContext(limits or Limits())
    return list(extract_mail(ScanObject(raw), ctx)), ctx


def _multipart(parts: list[bytes], boundary: bytes = b"b") -> bytes:
    out = [b"Content-Type: multipart/mixed; boundary=" + boundary + b"\r\n\r\n"]
    for part in parts:
        out.append(b"--" + boundary + b"\r\n" + part + b"\r\n")
    out.append(b"--" + boundary + b"--\r\n")
    return b"".join(out)


def test_agrees_with_the_stdlib_parser_on_a_well_formed_message() -> None:
    msg = EmailMessage()
    msg["From"] = "a@example.org"
    msg["Subject"] = "agree"
    msg.set_content("plain body\n")
    msg.add_alternative("<p>html body</p>\n", subtype="html")
    msg.add_attachment(
        b"\x00\x01binary" * 100, maintype="application", subtype="octet-stream", filename="data.bin"
    )
    msg.add_attachment("naïve text\n", filename="naïve.txt")
    raw = msg.as_bytes(policy=email.policy.SMTP)
    reference = [
        p.get_payload(decode=True)
        for p in email.message_from_bytes(raw, policy=email.policy.default).walk()
        if not p.is_multipart()
    ]
    children, ctx = _split(raw)
    assert [bytes(c.data) for c in children] == reference
    assert [c.label for c in children] == ["1.1", "1.2", "2/data.bin", "3/naïve.txt"]
    assert children[3].name == "naïve.txt"
    assert ctx.warnings == []


def test_ten_thousand_parts_stop_at_the_part_limit() -> None:
    # 10,000 parts under a limit of 5,000: the rest is reported, not dropped silently
    raw = _multipart([b"Content-Type: text/plain\r\n\r\nx%d" % i for i in range(10_000)])
    children, ctx = _split(raw, Limits(max_mime_parts=5_000))
    assert len(children) == 5_000
    assert children[-1].label == "5000"
    assert ctx.unscanned_notes == [("5001", "more than 5000 MIME parts")]


def test_ten_thousand_parts_within_the_default_limit_are_all_yielded() -> None:
    raw = _multipart([b"\r\nx%d" % i for i in range(10_000)])
    children, ctx = _split(raw)
    assert len(children) == 10_000
    assert bytes(children[9_999].data) == b"x9999"
    assert ctx.unscanned_notes == []


def test_ten_megabyte_header_block_is_parsed_only_up_to_the_limit() -> None:
    # the Content-Type beyond max_header_bytes is never parsed: the body is one
    # text part, and the walk notes the truncation instead of reading 10 MB of lines
    filler = b"X-Filler: " + b"a" * 90 + b"\r\n"
    raw = (
        filler * (10 * 1024 * 1024 // len(filler))
        + b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n\r\ninner\r\n--zz--\r\n"
    )
    children, ctx = _split(raw, Limits(max_header_bytes=64 * 1024))
    assert [c.label for c in children] == ["1"]
    assert bytes(children[0].data).startswith(b"--zz")
    assert any("header block over 65536 bytes" in w for _, w in ctx.warnings)


def test_deep_multipart_nesting_is_reported_and_still_scanned() -> None:
    raw = b"Content-Type: text/plain\r\n\r\ncore"
    for level in range(40):
        b = b"L%d" % level
        raw = b"Content-Type: multipart/mixed; boundary=" + b + b"\r\n\r\n--" + b + b"\r\n" + raw
        raw += b"\r\n--" + b + b"--\r\n"
    children, ctx = _split(raw, Limits(max_depth=8))
    assert ("1" + ".1" * 7, "MIME nesting too deep") in ctx.unscanned_notes
    assert len(children) == 1
    assert b"core" in bytes(children[0].data)


def test_digest_parts_default_to_message_rfc822_and_partial_is_noted() -> None:
    raw = (
        b"Content-Type: multipart/digest; boundary=d\r\n\r\n"
        b"--d\r\n\r\nFrom: x@example.org\r\n\r\nhi\r\n"
        b"--d\r\nContent-Type: message/partial; number=2\r\n\r\nrest\r\n--d--\r\n"
    )
    children, ctx = _split(raw)
    assert [(c.label, c.content_type) for c in children] == [
        ("1", None),
        ("2", "message/partial"),
    ]
    assert ctx.unscanned_notes == [("2", "message/partial")]


def test_part_paths_are_prefixed_with_the_parent_path() -> None:
    raw = b"Content-Type: message/partial\r\n\r\nbody"
    ctx = WalkContext(Limits())
    list(extract_mail(ScanObject(raw, path=("2", "fwd.eml")), ctx))
    assert ctx.unscanned_notes == [("2/fwd.eml/1", "message/partial")]


def test_file_names_cannot_forge_path_elements() -> None:
    raw = _multipart(
        [
            b'Content-Disposition: attachment; filename="../../etc/x\x01.exe"\r\n\r\nz',
            b"Content-Disposition: attachment; filename=c:\\dir\\v.exe\r\n\r\nz",
        ]
    )
    children, _ = _split(raw)
    assert [c.label for c in children] == ["1/.._.._etc_x_.exe", "2/c:_dir_v.exe"]
    assert [c.name for c in children] == ["../../etc/x\x01.exe", "c:\\dir\\v.exe"]


def test_large_base64_part_is_spooled_and_decoded() -> None:
    payload = bytes(range(256)) * 8192  # 2 MiB
    raw = _multipart([b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(payload)])
    children, ctx = _split(raw, Limits(spool_threshold=256 * 1024))
    assert not isinstance(children[0].data, bytes)
    assert bytes(children[0].data) == payload
    ctx.close()


def test_total_byte_limit_escapes_as_limit_exceeded() -> None:
    raw = _multipart([b"\r\n" + b"x" * 5000 for _ in range(10)])
    ctx = WalkContext(Limits(max_total_bytes=20_000))
    try:
        list(extract_mail(ScanObject(raw), ctx))
    except LimitExceeded as exc:
        assert exc.fatal
    else:
        raise AssertionError("the byte limit was not enforced")


_PIECES = st.sampled_from(
    [
        b"--b\r\n",
        b"--b--\r\n",
        b"--b",
        b"\r\n",
        b"\n",
        b"\r\n\r\n",
        b"Content-Type: ",
        b"multipart/mixed; boundary=b",
        b'multipart/alternative; boundary="b"',
        b"message/rfc822",
        b"Content-Transfer-Encoding: base64\r\n",
        b"quoted-printable",
        b"Content-Disposition: attachment; filename*0*=utf-8''%E2; filename*1=x\r\n",
        b"=?utf-8?B?w6k=?=",
        b"QUJD",
        b"=3D=\r\n",
        b" \t",
        b"From x\r\n",
        b":",
        b";",
        b"\x00\xff",
        b"begin 644 a\r\n",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_PIECES, st.binary(max_size=40)), max_size=60))
def test_fuzz_never_raises_and_output_is_bounded(pieces: list[bytes]) -> None:
    raw = b"".join(pieces)
    children, ctx = _split(raw, Limits(max_mime_parts=50))
    assert len(children) <= 50
    assert sum(len(c.data) for c in children) <= len(raw)
    assert ctx.budget.total_bytes <= len(raw)
