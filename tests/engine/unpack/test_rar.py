"""Tests for the rar extractor, on hand-built RAR 4 archives with stored members."""

from __future__ import annotations

import pytest
from unpack_support import rar4_stored, run

from mailwarden.engine.unpack import rar
from mailwarden.engine.unpack.rar import extract_rar

needs_reader = pytest.mark.skipif(
    not rar.reader_available(), reason="no RAR reader tool (unrar, unar, 7z, bsdtar)"
)


@needs_reader
def test_stored_members() -> None:
    members = [("dir/readme.txt", b"hello rar"), ("tool.exe", b"MZ" + bytes(3000))]
    kids, ctx = run(extract_rar, rar4_stored(members), name="a.rar")
    assert [(k.label, k.name, bytes(k.data)) for k in kids] == [
        ("dir/readme.txt", "readme.txt", b"hello rar"),
        ("tool.exe", "tool.exe", members[1][1]),
    ]
    assert all(k.meta["container"] == "rar" for k in kids)
    assert ctx.unscanned_notes == []


@needs_reader
def test_encrypted_members_are_unscanned() -> None:
    kids, ctx = run(extract_rar, rar4_stored([("x.exe", b"MZ")], encrypted=True), name="e.rar")
    assert kids == []
    assert ctx.unscanned_notes == [("e.rar/x.exe", "encrypted archive")]


def test_without_a_reader_the_archive_is_unscanned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rar, "reader_available", lambda: False)
    kids, ctx = run(extract_rar, rar4_stored([("a", b"b")]), name="n.rar")
    assert kids == []
    assert ctx.unscanned_notes == [("n.rar", "rar: no reader installed")]


@needs_reader
def test_garbage_is_a_warning() -> None:
    kids, ctx = run(extract_rar, b"Rar!\x1a\x07\x00" + bytes(50))
    assert kids == []
    assert ctx.warnings or ctx.unscanned_notes
