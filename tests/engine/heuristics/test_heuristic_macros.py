"""Office macro heuristic on OLE2 documents built in the test (see ole2_builder.py)."""

from __future__ import annotations

import struct

import pytest
from ole2_builder import Node, build, storage, stream

from mailwarden.engine.filetype import FileKind, sniff
from mailwarden.engine.heuristics import HeuristicSettings, check
from mailwarden.engine.objects import ScanObject

EXCEL_CLSID = "00020820-0000-0000-C000-000000000046"


def _vba_project(*, with_dir: bool = True, code: bytes = b"Attribut\x00e VB_Name") -> list[Node]:
    vba = [stream("_VBA_PROJECT", b"\xcc\x61\xff\xff"), stream("Module1", code)]
    if with_dir:
        vba.append(stream("dir", b"\x01\x00\x00"))
    return [stream("PROJECT", b'ID="{0}"\r\nModule=Module1\r\n'), storage("VBA", *vba)]


def _biff(record: int, body: bytes) -> bytes:
    return struct.pack("<HH", record, len(body)) + body


def _workbook(sheet_type: int) -> bytes:
    bof = _biff(0x0809, struct.pack("<HHHHII", 0x0600, 0x0005, 0, 0, 0, 0))
    sheet = _biff(0x0085, struct.pack("<IBBB", 0, 0, sheet_type, 6) + b"\x00Macro1")
    return build(stream("Workbook", bof + sheet + _biff(0x000A, b"")), clsid=EXCEL_CLSID)


def _names(data: bytes, name: str | None, cfg: HeuristicSettings | None = None) -> list[str]:
    obj = ScanObject(data, name=name, parent_kind="mime")
    return [hit.name for hit in check(obj, sniff(data), cfg or HeuristicSettings())]


def test_builder_makes_ole2() -> None:
    assert sniff(build(stream("WordDocument", b"x"))) is FileKind.OLE2


def test_word_document_with_vba() -> None:
    doc = build(stream("WordDocument", b"text"), storage("Macros", *_vba_project()))
    assert _names(doc, "invoice.doc") == ["Heuristics.OLE2.Macro"]


def test_ooxml_vba_project_member() -> None:
    # the vbaProject.bin member of a .docm: the VBA project sits at the root
    obj = ScanObject(build(*_vba_project()), name="word/vbaProject.bin", parent_kind="zip")
    assert [h.name for h in check(obj, FileKind.OLE2, HeuristicSettings())] == [
        "Heuristics.OLE2.Macro"
    ]


def test_excel4_macro_sheet() -> None:
    assert _names(_workbook(sheet_type=0x01), "budget.xls") == ["Heuristics.OLE2.Macro"]


def test_excel_worksheet_without_macros() -> None:
    assert _names(_workbook(sheet_type=0x00), "budget.xls") == []


@pytest.mark.parametrize(
    "doc",
    [
        build(stream("WordDocument", b"just text")),
        # a VBA storage without its dir stream, and no compressed code anywhere
        build(
            stream("WordDocument", b"text"),
            storage("Macros", *_vba_project(with_dir=False, code=b"\x00" * 16)),
        ),
    ],
)
def test_documents_without_a_vba_project(doc: bytes) -> None:
    assert _names(doc, "letter.doc") == []


def test_macro_switch() -> None:
    doc = build(*_vba_project())
    assert _names(doc, "invoice.doc", HeuristicSettings(office_macros=False)) == []


def test_compressed_vba_code_without_project_structure() -> None:
    # olevba also counts VBA source in orphaned streams, as malformed droppers use
    doc = build(stream("WordDocument", b"text"), storage("Macros", *_vba_project(with_dir=False)))
    assert _names(doc, "letter.doc") == ["Heuristics.OLE2.Macro"]


@pytest.mark.parametrize("cut", [8, 512, 1024])
def test_truncated_ole2_is_not_reported(cut: int) -> None:
    doc = build(*_vba_project())[:cut]
    obj = ScanObject(doc, name="invoice.doc", parent_kind="mime")
    assert check(obj, FileKind.OLE2, HeuristicSettings()) == []


def test_garbage_after_ole2_magic() -> None:
    data = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 20
    assert _names(data, None) == []
