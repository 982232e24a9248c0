"""Bulk reading of hash databases: the same result as the line-by-line path."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.engine.signatures.hashindex import HashIndex, HashIndexBuilder
from mailwarden.engine.signatures.hashlines import plain_lines
from mailwarden.engine.signatures.parsers import DatabaseParser, chunks, file_chunks
from mailwarden.engine.signatures.tables import TableBuilder
from mailwarden.errors import SignatureError

Entry = tuple[bytes, int, bytes]


def _entries(index: HashIndex) -> list[Entry]:
    """Every (digest, size, name) of an index, in its stored order."""
    records, _, names = (bytes(p) for p in index.to_parts())
    width = index.digest_len + 12
    out = []
    for at in range(0, len(records), width):
        rec = records[at : at + width]
        off = int.from_bytes(rec[-4:], "big")
        out.append(
            (
                rec[: index.digest_len],
                int.from_bytes(rec[-12:-4], "big"),
                names[off:].split(b"\x00", 1)[0],
            )
        )
    return out


def _load(
    data: bytes, ext: str, *, bulk: bool, chunk: int = 0
) -> tuple[dict[object, list[Entry]], dict[str, int]] | str:
    builder = TableBuilder()
    parser = DatabaseParser(builder)
    try:
        if bulk and chunk:
            parser.parse_chunks(chunks(data, chunk), ext, file="t." + ext, official=False)
        elif bulk:
            parser.parse_bytes(data, ext, file="t." + ext, official=False)
        else:
            parser.parse(
                data.decode("utf-8", "surrogateescape"), ext, file="t." + ext, official=False
            )
    except SignatureError as exc:
        return str(exc)
    tables = builder.build()
    # which of two entries with one digest and size comes first is not defined
    found = {key: sorted(_entries(index)) for key, index in tables.hashes.items()}
    return found, {**parser.counts, **{"skip " + k: v for k, v in parser.skipped.items()}}


def _md5_hex(i: int) -> str:
    return hashlib.md5(str(i).encode(), usedforsecurity=False).hexdigest()


_digest = st.sampled_from([16, 20, 32, 15, 0]).flatmap(
    lambda n: st.binary(min_size=n, max_size=n).map(bytes.hex)
)
_digest_text = st.one_of(
    _digest,
    _digest.map(str.upper),
    _digest.map(lambda h: h[:-1] + "g" if h else "g"),
    st.text("0123456789abcdef", max_size=70),
)
_size = st.one_of(
    st.integers(0, 10**19).map(str),
    st.just("*"),
    st.just(str(2**64 - 1)),
    st.just(str(2**64)),
    st.just("00012"),
    st.just("+5"),
    st.just(""),
    st.just("٣"),  # a digit to str.isdigit, not to int in every form
)
_name = st.one_of(
    st.from_regex(r"[A-Za-z][A-Za-z0-9.\-]{0,12}", fullmatch=True),
    st.just(" Padded "),
    st.just("Tab\t"),
    st.just("Nämé"),
    st.just(""),
    st.just("Same.Name"),
    st.text(max_size=6).filter(lambda t: "\n" not in t and "\r" not in t),
)
_line = st.one_of(
    st.tuples(_digest_text, _size, _name).map(":".join),
    st.tuples(_digest_text, _size, _name, st.sampled_from(["", "51", "999", "x"])).map(":".join),
    st.sampled_from(["", "# comment", "   ", "\t", "onlyonefield", "a:b"]),
)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(_line, max_size=12),
    newline=st.sampled_from(["\n", "\r\n"]),
    final=st.booleans(),
    ext=st.sampled_from(["hdb", "hsb"]),
    chunk=st.sampled_from([0, 1, 40, 100]),
)
def test_bulk_path_equals_line_path(
    lines: list[str], newline: str, final: bool, ext: str, chunk: int
) -> None:
    text = newline.join(lines) + (newline if final and lines else "")
    data = text.encode("utf-8", "surrogateescape")
    assert _load(data, ext, bulk=True, chunk=chunk) == _load(data, ext, bulk=False)


def test_error_names_the_line_after_bulk_lines() -> None:
    lines = [f"{_md5_hex(i)}:{i}:Sig-{i}" for i in range(10)]
    lines.insert(6, f"{_md5_hex(99)}:12x:Broken")
    with pytest.raises(SignatureError, match=r"t\.hdb:7: bad size '12x'"):
        DatabaseParser(TableBuilder()).parse_bytes(
            "\n".join(lines).encode(), "hdb", file="t.hdb", official=False
        )


def test_size_that_does_not_fit_is_an_error_not_a_crash() -> None:
    line = f"{_md5_hex(1)}:{2**64 - 1}:Too.Big\n".encode()
    for bulk in (True, False):
        assert _load(line, "hdb", bulk=bulk) == f"t.hdb:1: size {2**64 - 1} is too large"


def test_mixed_digest_lengths_split_by_length() -> None:
    md5 = hashlib.md5(b"a", usedforsecurity=False).hexdigest()
    sha1 = hashlib.sha1(b"b", usedforsecurity=False).hexdigest()
    sha256 = hashlib.sha256(b"c").hexdigest()
    text = f"{sha256}:3:C\n# note\n{md5}:1:A\r\n{sha1}:2:B".encode()
    bulk = plain_lines(text)
    assert sorted(bulk.blocks) == [16, 20, 32]
    assert [(n, t) for n, t in bulk.others] == [(2, "# note")]
    assert bulk.blocks[20].names == b"B\x00"
    assert int(bulk.blocks[32].sizes[0]) == 3
    loaded = _load(text, "hsb", bulk=True)
    assert not isinstance(loaded, str)
    assert loaded[1] == {"hsb": 3}


def test_blocks_and_single_entries_sort_together() -> None:
    builder = HashIndexBuilder(16)
    single = [
        (hashlib.md5(f"s{i}".encode(), usedforsecurity=False).digest(), i, f"S{i}")
        for i in range(50)
    ]
    for digest, size, name in single[:25]:
        builder.add(digest, size, name)
    text = "".join(f"{_md5_hex(i)}:{i}:B{i}\n" for i in range(300)).encode()
    builder.add_block(plain_lines(text).blocks[16])
    for digest, size, name in single[25:]:
        builder.add(digest, None if size % 7 == 0 else size, name)
    index = builder.build()
    entries = _entries(index)
    assert len(entries) == 350
    records = bytes(index.to_parts()[0])
    rows = [records[i : i + 28] for i in range(0, len(records), 28)]
    assert rows == sorted(rows)
    assert index.wildcard
    assert index.lookup(bytes.fromhex(_md5_hex(123)), 123) == "B123"
    assert index.lookup(single[3][0], 3) == "S3"
    assert index.lookup(single[28][0], 99999) == "S28"  # any size
    assert all(index.wants_size(i) for i in range(300))


def test_files_are_read_in_pieces_that_end_at_line_ends(tmp_path: Path) -> None:
    text = b"".join(f"{_md5_hex(i)}:{i}:Sig-{i}\n".encode() for i in range(1000)) + b"tail"
    path = tmp_path / "x.hdb"
    path.write_bytes(text)
    with path.open("rb") as fh:
        read = list(file_chunks(fh, 1000))
    for pieces in (read, list(chunks(text, 1000))):
        assert b"".join(pieces) == text
        assert len(pieces) > 20
        assert all(p.endswith(b"\n") and len(p) <= 1100 for p in pieces[:-1])
