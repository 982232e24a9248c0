"""The PDF extractor on documents built here (and Debian's clam.pdf)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.engine.limits import LimitExceeded, Limits
from mailwarden.engine.objects import Child, ScanObject, WalkContext
from mailwarden.engine.unpack.pdf import extract_pdf, pdf_string

PAYLOAD = b"MZ\x90\x00" + bytes(range(256)) * 4
CLAM_PDF = Path("/usr/share/clamav-testfiles/clam.pdf")


def _obj(num: int, head: bytes, stream: bytes | None = None) -> bytes:
    out = b"%d 0 obj\n" % num + head
    if stream is not None:
        out += b"\nstream\r\n" + stream + b"\r\nendstream"
    return out + b"\nendobj\n"


def _pdf(*objects: bytes) -> bytes:
    return (
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
        + b"".join(objects)
        + b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )


def _extract(raw: bytes, limits: Limits | None = None) -> tuple[list[Child], WalkContext]:
    ctx = WalkContext(limits or Limits())
    return list(extract_pdf(ScanObject(raw), ctx)), ctx


def _lzw(data: bytes) -> bytes:
    """A plain PDF LZW encoder (early change 1) for the decoder to undo."""
    table = {bytes([i]): i for i in range(256)}
    width, codes, bits, nbits = 9, [256], 0, 0
    out = bytearray()
    prefix = b""

    def emit(code: int) -> None:
        nonlocal bits, nbits
        bits = (bits << width) | code
        nbits += width
        while nbits >= 8:
            nbits -= 8
            out.append((bits >> nbits) & 0xFF)

    emit(256)
    for byte in data:
        candidate = prefix + bytes([byte])
        if candidate in table:
            prefix = candidate
            continue
        emit(table[prefix])
        if len(table) + 2 < 4096:
            table[candidate] = len(table) + 2
            if len(table) + 2 + 1 >= (1 << width) and width < 12:
                width += 1
        prefix = bytes([byte])
    if prefix:
        emit(table[prefix])
    emit(257)
    if nbits:
        out.append((bits << (8 - nbits)) & 0xFF)
    del codes
    return bytes(out)


def _png_up(rows: list[bytes]) -> bytes:
    out, prior = bytearray(), bytes(len(rows[0]))
    for row in rows:
        out += b"\x02" + bytes((a - b) & 0xFF for a, b in zip(row, prior, strict=True))
        prior = row
    return bytes(out)


def test_filters_chains_and_embedded_file_names() -> None:
    rows = [bytes([i, i * 2, i * 3, 7]) for i in range(20)]
    doc = _pdf(
        _obj(1, b"<< /Type /Catalog >>"),
        _obj(
            4,
            b"<< /Type /EmbeddedFile /Filter /FlateDecode /Length %d >>"
            % len(zlib.compress(PAYLOAD)),
            zlib.compress(PAYLOAD),
        ),
        _obj(
            5,
            b"<< /Type /Filespec /F (old.exe) /UF <FEFF0069006E0076002E006500780065>"
            b" /EF << /F 4 0 R >> >>",
        ),
        _obj(
            6,
            b"<< /Length 7 0 R /Filter [/AHx /Fl] >>",
            binascii.hexlify(zlib.compress(b"BT (chained) Tj ET")) + b">",
        ),
        _obj(7, b"999"),
        _obj(8, b"<< /Filter /ASCII85Decode >>", b"<~" + base64.a85encode(b"eighty-five") + b"~>"),
        _obj(9, b"<< /Filter /LZWDecode >>", _lzw(b"lzw lzw lzw lzw lzw data " * 40)),
        _obj(10, b"<< /Filter /RunLengthDecode >>", b"\x02abc\xfdx\x80"),
        _obj(
            11,
            b"<< /Filter /FlateDecode /DecodeParms << /Predictor 12 /Columns 4 >> >>",
            zlib.compress(_png_up(rows)),
        ),
        _obj(12, b"<< /Filter [/FlateDecode /DCTDecode] >>", zlib.compress(b"\xff\xd8\xff jpeg")),
        _obj(13, b"<< /Length 3 >>", b"raw stream with a wrong length"),
    )
    children, ctx = _extract(doc)
    got = {c.label: (c.name, bytes(c.data)) for c in children}
    assert got == {
        "stream-4": ("inv.exe", PAYLOAD),
        "stream-6": (None, b"BT (chained) Tj ET"),
        "stream-8": (None, b"eighty-five"),
        "stream-9": (None, b"lzw lzw lzw lzw lzw data " * 40),
        "stream-10": (None, b"abcxxxx"),
        "stream-11": (None, b"".join(rows)),
        "stream-12": (None, b"\xff\xd8\xff jpeg"),
        "stream-13": (None, b"raw stream with a wrong length"),
    }
    assert children[0].meta == {"pdf_filters": ["FlateDecode"], "embedded_file": True}
    assert ctx.warnings == []


def test_missing_endstream_and_corrupt_flate_yield_what_decodes() -> None:
    text = b"".join(hashlib.sha256(b"%d" % i).hexdigest().encode() for i in range(500))
    broken = zlib.compress(text)[:-200]
    children, ctx = _extract(
        _pdf(_obj(3, b"<< /Filter /FlateDecode >>")) + b"4 0 obj << /Filter "
        b"/FlateDecode >> stream\n" + broken
    )
    assert [c.label for c in children] == ["stream-4"]
    data = bytes(children[0].data)
    assert 0 < len(data) < len(text)
    assert text.startswith(data)
    assert ctx.warnings == []


def test_raw_deflate_without_zlib_header() -> None:
    comp = zlib.compressobj(wbits=-15)
    raw = comp.compress(PAYLOAD) + comp.flush()
    children, _ = _extract(_pdf(_obj(2, b"<< /Filter /FlateDecode >>", raw)))
    assert bytes(children[0].data) == PAYLOAD


def test_garbage_flate_is_a_warning_not_a_child() -> None:
    children, ctx = _extract(_pdf(_obj(2, b"<< /Filter /FlateDecode >>", b"\x00garbage")))
    assert children == []
    assert len(ctx.warnings) == 1


def test_encrypted_document_is_reported() -> None:
    doc = _pdf(_obj(1, b"<< >>", b"plain")) + b"trailer << /Encrypt 9 0 R >>"
    children, ctx = _extract(doc)
    assert ctx.unscanned_notes == [("", "encrypted document")]
    assert [bytes(c.data) for c in children] == [b"plain"]


def test_flate_bomb_stops_on_the_ratio_limit() -> None:
    bomb = zlib.compress(b"\x00" * (8 * 1024 * 1024), 9)
    with pytest.raises(LimitExceeded):
        _extract(
            _pdf(_obj(2, b"<< /Filter /FlateDecode >>", bomb)),
            Limits(max_ratio=50, ratio_floor=1024 * 1024),
        )


def test_chained_flate_bomb_stops_in_the_middle_stage() -> None:
    inner = zlib.compress(b"\x00" * (8 * 1024 * 1024), 9)
    doc = _pdf(_obj(2, b"<< /Filter [/FlateDecode /FlateDecode] >>", zlib.compress(inner)))
    with pytest.raises(LimitExceeded):
        _extract(doc, Limits(max_ratio=50, ratio_floor=1024 * 1024))


def test_pdf_string_forms() -> None:
    assert pdf_string(b"(a\\(b\\)c \\101\\n(nested))", 0) == "a(b)c A\n(nested)"
    assert pdf_string(b"<48656c6c6f2>", 0) == "Hello "
    assert pdf_string(b"<FEFF00E9>", 0) == "é"


@pytest.mark.skipif(not CLAM_PDF.exists(), reason="clamav-testfiles is not installed")
def test_clamav_sample_yields_streams() -> None:
    children, _ = _extract(CLAM_PDF.read_bytes())
    assert children
    assert all(len(c.data) for c in children)


_VALID = _pdf(
    _obj(4, b"<< /Type /EmbeddedFile /Filter /FlateDecode >>", zlib.compress(PAYLOAD)),
    _obj(5, b"<< /F (x.exe) /EF << /F 4 0 R >> >>"),
    _obj(
        6,
        b"<< /Filter [/AHx /A85 /RL /LZW] /DecodeParms [null << /Predictor 2 >>] >>",
        b"3c7e3c7e7e3e",
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)), max_size=12))
def test_fuzz_mutations_never_raise_and_output_is_bounded(flips: list[tuple[int, int]]) -> None:
    raw = bytearray(_VALID)
    for pos, value in flips:
        raw[pos] = value
    children, ctx = _extract(bytes(raw), Limits(ratio_floor=64 * 1024))
    assert ctx.budget.total_bytes <= 200 * len(raw) + 64 * 1024 * len(children)
