"""SignatureSet.match: order, targets, conditions, allowlist and buffer types."""

from __future__ import annotations

import hashlib
import mmap
import tempfile
from pathlib import Path

import feature_samples as fs
import pytest
from sig_helpers import MATCHERS, load_dbs, names

from mailwarden.engine.filetype import FileKind


def _md5(d: bytes) -> str:
    return hashlib.md5(d, usedforsecurity=False).hexdigest()


@pytest.mark.parametrize("matcher", MATCHERS)
def test_clamd_order_hash_first_then_by_end_offset(tmp_path: Path, matcher: str) -> None:
    data = b"HEAD late-marker early-one TAIL"
    data = b"early " + data
    sigs = load_dbs(
        tmp_path,
        {
            "a.ndb": "Late:0:*:6c6174652d6d61726b6572\nEarly:0:*:6561726c79\n",
            "b.ldb": "Logic;Target:0;0;48454144\n",
            "c.hdb": f"{_md5(data)}:{len(data)}:Hashed\n",
        },
        matcher,
    )
    assert names(sigs, data, FileKind.BINARY) == ["Hashed", "Early", "Late", "Logic"]
    (first,) = sigs.match(data, FileKind.BINARY)
    assert first.name == "Hashed"


@pytest.mark.parametrize("matcher", MATCHERS)
def test_first_body_match_is_the_one_ending_first(tmp_path: Path, matcher: str) -> None:
    sigs = load_dbs(tmp_path, {"a.ndb": "Second:0:*:626262\nFirst:0:*:616161\n"}, matcher)
    assert [m.name for m in sigs.match(b"aaa bbb", FileKind.BINARY)] == ["First"]
    assert [m.name for m in sigs.match(b"bbb aaa", FileKind.BINARY)] == ["Second"]


@pytest.mark.parametrize("matcher", MATCHERS)
def test_targets_follow_the_kind(tmp_path: Path, matcher: str) -> None:
    sigs = load_dbs(
        tmp_path,
        {"t.ndb": "Elf:6:*:6d61726b\nMacho:9:*:6d61726b\nAny:0:*:6d61726b\nPdf:10:*:6d61726b\n"},
        matcher,
    )
    assert sorted(names(sigs, b"\x7fELF mark", FileKind.ELF)) == ["Any", "Elf"]
    assert sorted(names(sigs, b"mark", FileKind.MACHO)) == ["Any", "Macho"]
    assert names(sigs, b"mark", FileKind.BINARY) == ["Any"]


@pytest.mark.parametrize("matcher", MATCHERS)
def test_container_conditions(tmp_path: Path, matcher: str) -> None:
    sigs = load_dbs(
        tmp_path,
        {
            "c.ldb": (
                "InZip;Engine:81-255,Target:0,Container:CL_TYPE_ZIP;0;7a6970\n"
                "RootOnly;Engine:81-255,Target:0,Container:CL_TYPE_ANY;0;726f6f74\n"
                "InMail;Engine:81-255,Target:0,Intermediates:CL_TYPE_MAIL;0;6d61696c\n"
                "AnyLayer;Engine:81-255,Target:0,Intermediates:CL_TYPE_ANY;0;616e79\n"
            )
        },
        matcher,
    )
    assert names(sigs, b"zip", FileKind.BINARY, container="zip") == ["InZip"]
    assert names(sigs, b"zip", FileKind.BINARY) == []
    assert names(sigs, b"root", FileKind.BINARY) == ["RootOnly"]
    assert names(sigs, b"root", FileKind.BINARY, container="zip") == []
    assert names(sigs, b"mail", FileKind.BINARY, container="mail") == ["InMail"]
    assert names(sigs, b"mail", FileKind.BINARY, container="tar") == []
    assert names(sigs, b"any", FileKind.BINARY, container="rar") == ["AnyLayer"]


@pytest.mark.parametrize("matcher", MATCHERS)
def test_allowlist_silences_everything(tmp_path: Path, matcher: str) -> None:
    data = b"contains marker"
    sigs = load_dbs(
        tmp_path,
        {
            "a.ndb": "Body:0:*:6d61726b6572\n",
            "a.hdb": f"{_md5(data)}:{len(data)}:Hashed\n",
            "a.sfp": f"{hashlib.sha256(data).hexdigest()}:*:Allowed\n",
        },
        matcher,
    )
    assert sigs.match(data, FileKind.BINARY) == []
    assert names(sigs, data + b"!", FileKind.BINARY) == ["Body"]


@pytest.mark.parametrize("matcher", MATCHERS)
def test_mmap_buffers_match_like_bytes(tmp_path: Path, matcher: str) -> None:
    data = fs._pe(b"section marker") + b"tail marker"
    section = fs.pe_section_of(data)
    sigs = load_dbs(
        tmp_path / "db",
        {
            "a.ndb": "Body:0:*:7461696c206d61726b6572\n",
            "a.mdb": f"{len(section)}:{_md5(section)}:Section\n",
            "b.ldb": "Far;Target:1;0;EOF-11:7461696c206d61726b6572\n",
        },
        matcher,
    )
    with tempfile.TemporaryFile() as fh:
        fh.write(data)
        fh.flush()
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as view:
            assert names(sigs, view, FileKind.PE) == names(sigs, data, FileKind.PE)
            assert names(sigs, view, FileKind.PE) == ["Section", "Body", "Far"]


def test_section_hashes_only_for_pe(tmp_path: Path) -> None:
    data = fs._pe(b"x")
    section = fs.pe_section_of(data)
    sha1 = hashlib.sha1(section, usedforsecurity=False).hexdigest()
    sigs = load_dbs(tmp_path, {"a.msb": f"{len(section)}:{sha1}:Sec\n"})
    assert names(sigs, data, FileKind.PE) == ["Sec"]
    assert names(sigs, data, FileKind.BINARY) == []


@pytest.mark.parametrize("matcher", MATCHERS)
def test_counted_subsignature_stops_at_what_the_expression_needs(
    tmp_path: Path, matcher: str
) -> None:
    sigs = load_dbs(
        tmp_path, {"a.ldb": "Many;Target:0;0>3;7878\nFive;Target:0;0=5;7878\n"}, matcher
    )
    # overlapping matches count, as in ClamAV: "xxxxxx" holds "xx" five times
    assert names(sigs, b"xx" * 3, FileKind.BINARY) == ["Many", "Five"]
    assert names(sigs, b"xx xx xx", FileKind.BINARY) == []
    assert names(sigs, b"xx xx xx xx", FileKind.BINARY) == ["Many"]
    assert names(sigs, b"x" * 100_000, FileKind.BINARY) == ["Many"]


def test_empty_payload(tmp_path: Path) -> None:
    sigs = load_dbs(
        tmp_path, {"a.ndb": "Body:0:*:6d61726b6572\n", "a.hdb": f"{_md5(b'')}:0:Empty\n"}
    )
    assert names(sigs, b"", FileKind.EMPTY) == ["Empty"]
