"""The TNEF extractor on winmail.dat streams built here (and Debian's clam.tnef)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.engine.limits import Limits
from mailwarden.engine.objects import Child, ScanObject, WalkContext
from mailwarden.engine.unpack.tnef import decompress_rtf, extract_tnef, mapi_properties

SIGNATURE = b"\x78\x9f\x3e\x22"
PAYLOAD = b"MZ\x90\x00" + bytes(range(256)) * 4
CLAM_TNEF = Path("/usr/share/clamav-testfiles/clam.tnef")
# MS-OXRTFCP's first example: compressed and plain
RTF_COMPRESSED = bytes.fromhex(
    "2d0000002b0000004c5a4675f1c5c7a703000a0072637067313235423"
    "20af32068656c090020627705b06c647d0a800fa0"
)
RTF_PLAIN = b"{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n"


def _attr(level: int, attr: int, data: bytes) -> bytes:
    return (
        struct.pack("<BII", level, attr, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)
    )


def _pad(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 4)


def _var(ptype: int, prop: int, value: bytes) -> bytes:
    return struct.pack("<HHII", ptype, prop, 1, len(value)) + _pad(value)


def _props(*items: bytes) -> bytes:
    return struct.pack("<I", len(items)) + b"".join(items)


def _named_long() -> bytes:
    # a named property (id >= 0x8000) with a string name, then a PT_LONG value
    name = "x-name".encode("utf-16-le")
    return (
        struct.pack("<HH", 0x0003, 0x8001)
        + b"G" * 16
        + struct.pack("<II", 1, len(name))
        + _pad(name)
        + struct.pack("<I", 7)
    )


def _winmail(*attributes: bytes) -> bytes:
    return (
        SIGNATURE + b"\x01\x00" + _attr(1, 0x00089006, b"\x00\x00\x01\x00") + b"".join(attributes)
    )


def _extract(raw: bytes) -> tuple[list[Child], WalkContext]:
    ctx = WalkContext(Limits())
    return list(extract_tnef(ScanObject(raw), ctx)), ctx


def test_attachments_with_long_and_short_names_and_bodies() -> None:
    long_name = "Quarterly report.exe".encode("utf-16-le") + b"\x00\x00"
    raw = _winmail(
        _attr(1, 0x0002800C, b"plain body\x00"),
        _attr(
            1,
            0x00069003,
            _props(
                struct.pack("<HHI", 0x0003, 0x0E07, 1),  # PT_LONG: skipped
                _named_long(),
                _var(0x0102, 0x1013, b"<p>html body</p>"),
                _var(0x0102, 0x1009, RTF_COMPRESSED),
            ),
        ),
        _attr(2, 0x00069002, b"\x01\x00" + b"\xff" * 12),
        _attr(2, 0x00018010, b"QUARTE~1.EXE\x00"),
        _attr(2, 0x0006800F, PAYLOAD),
        _attr(
            2,
            0x00069005,
            _props(_var(0x001F, 0x3707, long_name), _var(0x001E, 0x370E, b"Application/X-Exe\x00")),
        ),
        _attr(2, 0x00069002, b"\x01\x00" + b"\xff" * 12),
        _attr(2, 0x00018010, b"notes.txt\x00"),
        _attr(2, 0x0006800F, b"second attachment"),
        _attr(2, 0x00069002, b"\x01\x00" + b"\xff" * 12),
        _attr(2, 0x0006800F, b"nameless"),
    )
    children, ctx = _extract(raw)
    got = [(c.label, c.name, c.content_type, bytes(c.data)) for c in children]
    assert got == [
        ("body.txt", None, "text/plain", b"plain body"),
        ("body.html", None, "text/html", b"<p>html body</p>"),
        ("body.rtf", None, "text/rtf", RTF_PLAIN),
        ("Quarterly report.exe", "Quarterly report.exe", "application/x-exe", PAYLOAD),
        ("notes.txt", "notes.txt", None, b"second attachment"),
        ("attachment-3", None, None, b"nameless"),
    ]
    assert ctx.warnings == []


def test_embedded_message_object_and_binary_data_property() -> None:
    inner = _winmail(_attr(1, 0x0002800C, b"inner body"))
    iid = bytes(16)
    raw = _winmail(
        _attr(2, 0x00069002, b"\x05\x00" + b"\xff" * 12),
        _attr(2, 0x00069005, _props(_var(0x000D, 0x3701, iid + inner))),
        _attr(2, 0x00069002, b"\x01\x00" + b"\xff" * 12),
        _attr(
            2, 0x00069005, _props(_var(0x0102, 0x3701, PAYLOAD), _var(0x001E, 0x3704, b"a.bin\x00"))
        ),
    )
    children, _ = _extract(raw)
    assert [(c.label, bytes(c.data)) for c in children] == [
        ("attachment-1/object-1", inner),
        ("a.bin", PAYLOAD),
    ]
    # the embedded message is itself TNEF: the walker opens it the same way
    nested, _ = _extract(bytes(children[0].data))
    assert [(c.label, bytes(c.data)) for c in nested] == [("body.txt", b"inner body")]


def test_truncated_stream_yields_what_is_there() -> None:
    raw = _winmail(_attr(2, 0x00069002, b"\x01\x00"), _attr(2, 0x0006800F, PAYLOAD))[:-300]
    children, ctx = _extract(raw)
    assert len(children) == 1
    assert PAYLOAD.startswith(bytes(children[0].data))
    assert ("", "truncated TNEF attribute") in ctx.warnings


def test_not_tnef_is_a_warning() -> None:
    children, ctx = _extract(b"plain text")
    assert children == []
    assert ctx.warnings == [("", "not a TNEF stream")]


def test_rtf_uncompressed_form_and_garbage() -> None:
    ctx = WalkContext(Limits())
    raw = struct.pack("<IIII", 20, 5, 0x414C454D, 0) + b"{\\rtf}"
    assert decompress_rtf(raw, ctx) == b"{\\rtf"
    assert decompress_rtf(b"short", ctx) == b""
    assert decompress_rtf(struct.pack("<IIII", 0, 0, 0x12345678, 0) + b"x", ctx) == b""


def test_mapi_properties_stops_at_unknown_type() -> None:
    data = _props(_var(0x001E, 0x3001, b"ok\x00"), struct.pack("<HH", 0x0999, 0x1), b"zz")
    props = list(mapi_properties(data))
    assert props == [(0x3001, 0x001E, [b"ok\x00"])]


@pytest.mark.skipif(not CLAM_TNEF.exists(), reason="clamav-testfiles is not installed")
def test_clamav_sample_attachment() -> None:
    children, _ = _extract(CLAM_TNEF.read_bytes())
    exe = [c for c in children if c.name == "clam.exe"]
    assert len(exe) == 1
    assert bytes(exe[0].data).startswith(b"MZ")


_VALID = _winmail(
    _attr(1, 0x00069003, _props(_var(0x0102, 0x1009, RTF_COMPRESSED), _named_long())),
    _attr(2, 0x00069002, b"\x01\x00"),
    _attr(2, 0x0006800F, PAYLOAD),
    _attr(2, 0x00069005, _props(_var(0x001F, 0x3707, "n".encode("utf-16-le")))),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)), max_size=12))
def test_fuzz_mutations_never_raise_and_output_is_bounded(flips: list[tuple[int, int]]) -> None:
    raw = bytearray(_VALID)
    for pos, value in flips:
        raw[pos] = value
    children, _ = _extract(bytes(raw))
    # compressed RTF may expand at most ~8x; everything else is a slice of the input
    assert sum(len(c.data) for c in children) <= 9 * len(raw)
