"""Tests for the extractor registry."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator

import pytest
from unpack_support import run, zip_bytes

from mailwarden.engine import unpack
from mailwarden.engine.filetype import FileKind
from mailwarden.engine.unpack import EXTRACTORS, extractor_for
from mailwarden.engine.unpack.compress import extract_gzip
from mailwarden.engine.unpack.zip import extract_zip

REQUIRED = {
    FileKind.ZIP,
    FileKind.TAR,
    FileKind.GZIP,
    FileKind.BZIP2,
    FileKind.XZ,
    FileKind.SEVENZ,
    FileKind.RAR,
    FileKind.TNEF,
    FileKind.PDF,
    FileKind.OLE2,
    FileKind.MAIL,
    FileKind.TEXT,
    FileKind.HTML,
}


def test_registry_covers_every_container_kind() -> None:
    assert set(EXTRACTORS) == REQUIRED


def test_lookup_returns_the_real_functions() -> None:
    assert extractor_for(FileKind.ZIP) is extract_zip
    assert extractor_for(FileKind.GZIP) is extract_gzip
    assert extractor_for(FileKind.PE) is None


def test_registry_entries_extract() -> None:
    kids, _ = run(EXTRACTORS[FileKind.ZIP], zip_bytes([("a", b"b")], zipfile.ZIP_STORED))
    assert [(k.label, bytes(k.data)) for k in kids] == [("a", b"b")]


@pytest.fixture
def broken_kind(monkeypatch: pytest.MonkeyPatch) -> Iterator[FileKind]:
    monkeypatch.setitem(unpack._TARGETS, FileKind.CAB, "mailwarden.engine.unpack.nowhere:x")
    extractor_for.cache_clear()
    yield FileKind.CAB
    extractor_for.cache_clear()


def test_an_extractor_that_cannot_load_reports_unscanned(broken_kind: FileKind) -> None:
    assert extractor_for(broken_kind) is None
    kids, ctx = run(unpack._deferred(broken_kind), b"MSCF\x00\x00\x00\x00", name="x.cab")
    assert kids == []
    assert ctx.unscanned_notes == [("x.cab", "cab: no extractor available")]


@pytest.mark.parametrize("kind", sorted(REQUIRED))
def test_every_registered_extractor_loads(kind: FileKind) -> None:
    extract = extractor_for(kind)
    assert callable(extract)
    assert extract.__name__.startswith("extract_")
