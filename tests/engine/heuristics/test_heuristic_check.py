"""Behaviour of mailwarden.engine.heuristics.check: every heuristic, precedence, switches."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.engine.filetype import sniff
from mailwarden.engine.heuristics import (
    HEURISTIC_NAMES,
    HeuristicHit,
    HeuristicSettings,
    check,
)
from mailwarden.engine.objects import ScanObject

PE = b"MZ" + b"\x00" * 0x3A + (0x40).to_bytes(4, "little") + b"PE\x00\x00" + b"\x00" * 64
ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 64
MACHO = b"\xcf\xfa\xed\xfe" + b"\x00" * 64
LNK = b"L\x00\x00\x00\x01\x14\x02\x00" + b"\x00" * 68
PDF = b"%PDF-1.7\n1 0 obj << >> endobj\n%%EOF\n"
TEXT = b"Please find the quarterly figures attached.\n"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
ISO = b"\x00" * 0x8001 + b"CD001" + b"\x00" * 64
DEFAULT = HeuristicSettings()
ALL_ON = HeuristicSettings(encrypted_archives=True)


def names(
    data: bytes,
    name: str | None = None,
    parent: str | None = "mime",
    settings_: HeuristicSettings = DEFAULT,
    content_type: str | None = None,
) -> list[str]:
    obj = ScanObject(data, name=name, parent_kind=parent, content_type=content_type)
    return [hit.name for hit in check(obj, sniff(data), settings_)]


# --- executables by content ---------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PE, "Heuristics.Executable.PE"),
        (ELF, "Heuristics.Executable.ELF"),
        (MACHO, "Heuristics.Executable.MachO"),
    ],
)
def test_executable_content_is_named_by_format(data: bytes, expected: str) -> None:
    assert names(data, "tool.bin") == [expected]
    assert names(data, None) == [expected]


def test_executable_content_with_executable_name_reports_content() -> None:
    assert names(PE, "setup.exe") == ["Heuristics.Executable.PE"]


def test_executable_switch_turns_off_content_and_name() -> None:
    off = HeuristicSettings(executables=False)
    assert names(PE, "tool.bin", settings_=off) == []
    assert names(TEXT, "setup.exe", settings_=off) == []


def test_executable_name_without_executable_content() -> None:
    assert names(TEXT, "setup.exe") == ["Heuristics.Executable.Name"]
    assert names(TEXT, "LIBRARY.DLL") == ["Heuristics.Executable.Name"]


# --- scripts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("payment.js", "Heuristics.Script.JS"),
        ("update.JSE", "Heuristics.Script.JSE"),
        ("macro.vbs", "Heuristics.Script.VBS"),
        ("run.wsf", "Heuristics.Script.WSF"),
        ("page.hta", "Heuristics.Script.HTA"),
        ("install.ps1", "Heuristics.Script.PS1"),
        ("start.bat", "Heuristics.Script.BAT"),
        ("start.cmd", "Heuristics.Script.CMD"),
        ("screensaver.scr", "Heuristics.Script.SCR"),
        ("setup.msi", "Heuristics.Script.MSI"),
        ("app.jar", "Heuristics.Script.JAR"),
        ("shortcut.lnk", "Heuristics.Script.LNK"),
        ("settings.reg", "Heuristics.Script.REG"),
        ("panel.cpl", "Heuristics.Script.CPL"),
        ("old.pif", "Heuristics.Script.PIF"),
        ("program.com", "Heuristics.Script.COM"),
    ],
)
def test_script_names(name: str, expected: str) -> None:
    assert names(TEXT, name) == [expected]


def test_shortcut_content_is_flagged_without_a_name() -> None:
    assert names(LNK, None) == ["Heuristics.Script.LNK"]
    assert names(LNK, "readme") == ["Heuristics.Script.LNK"]


def test_scripts_switch() -> None:
    off = HeuristicSettings(scripts=False)
    assert names(TEXT, "payment.js", settings_=off) == []
    assert names(LNK, None, settings_=off) == []


def test_script_names_are_listed() -> None:
    for ext in ("JS", "VBS", "HTA", "PS1", "LNK", "MSI", "JAR", "REG"):
        assert f"Heuristics.Script.{ext}" in HEURISTIC_NAMES


# --- disk images --------------------------------------------------------------


@pytest.mark.parametrize("name", ["disk.iso", "disk.IMG", "vm.vhd", "vm.vhdx", "mac.dmg"])
def test_disk_image_by_name(name: str) -> None:
    assert names(TEXT, name) == ["Heuristics.DiskImage"]


@pytest.mark.parametrize(
    "data",
    [
        ISO,
        b"vhdxfile" + b"\x00" * 600,
        b"\x01\x02" * 600 + b"conectix" + b"\x00" * 504,
        b"\x01\x02" * 600 + b"koly" + b"\x00" * 508,
        b"\x00" * 0x8001 + b"BEA01" + b"\x00" * 64,
    ],
)
def test_disk_image_by_content(data: bytes) -> None:
    assert names(data, "scan0001.dat") == ["Heuristics.DiskImage"]
    assert names(data, "disk.iso", settings_=HeuristicSettings(disk_images=False)) == []


# --- double extensions and RTLO ---------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "invoice.pdf.exe",
        "Invoice.PDF.EXE",
        "invoice.pdf          .exe",
        "invoice.pdf.exe.",
        "invoice.pdf.exe . .",
        "photo.jpg.scr",
        "statement.doc.js",
        "order.zip.lnk",
        "report.xlsx.iso",
        "scan" + " " * 60 + ".exe",
        "archive.zip/invoice.pdf.exe",
        "folder\\invoice.pdf.exe",
        "invoice.pdf\u3000\u3000.vbs",
    ],
)
def test_double_extension(name: str) -> None:
    assert names(TEXT, name) == ["Heuristics.DoubleExtension"]


@pytest.mark.parametrize(
    "name",
    [
        "invoice.pdf",
        "backup.tar.gz",
        "setup.1.2.exe",
        "report.final.docx",
        "Q3 figures .xlsx",
        "my.photo.jpg",
        "..",
        ".",
        "",
    ],
)
def test_not_double_extension(name: str) -> None:
    assert "Heuristics.DoubleExtension" not in names(TEXT, name)


def test_double_extension_with_executable_content_still_reports_the_deception() -> None:
    assert names(PE, "invoice.pdf.exe") == ["Heuristics.DoubleExtension"]


def test_rtlo_is_reported_whatever_the_extension() -> None:
    # displays as "invoiceexe.pdf" but is "invoice\u202efdp.exe"
    assert names(PE, "invoice\u202efdp.exe") == ["Heuristics.RTLO"]
    assert names(TEXT, "notes\u202etxt") == ["Heuristics.RTLO"]


def test_double_extension_switch_covers_rtlo() -> None:
    off = HeuristicSettings(double_extension=False)
    assert names(TEXT, "invoice.pdf.exe", settings_=off) == ["Heuristics.Executable.Name"]
    assert names(TEXT, "invoice\u202efdp.exe", settings_=off) == ["Heuristics.Executable.Name"]
    assert names(TEXT, "notes\u202etxt", settings_=off) == []


# --- hostile name tricks ---------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "evil.exe.",
        "evil.exe   ",
        "evil.exe. . .",
        "EVIL.ExE",
        "evil.exe\x00.txt",
        "evil.e\u200bxe",
        "evil.exe\r\n",
        "a/b/c/evil.exe",
        "C:\\Users\\x\\evil.exe",
        "x" * 100_000 + ".exe",
    ],
)
def test_hostile_names_still_reveal_the_extension(name: str) -> None:
    assert names(TEXT, name) == ["Heuristics.Executable.Name"]


@pytest.mark.parametrize("name", ["exe", "my exe", "evil.exe.txt", "evil.exe/readme.txt", "e.x.e"])
def test_names_that_only_mention_exe(name: str) -> None:
    assert names(TEXT, name) == []


# --- type mismatch ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["invoice.pdf", "photo.JPG", "notes.txt", "report.docx"])
@pytest.mark.parametrize("data", [PE, ELF, MACHO, LNK])
def test_runnable_content_under_a_decoy_name(name: str, data: bytes) -> None:
    assert names(data, name) == ["Heuristics.TypeMismatch"]


def test_type_mismatch_needs_runnable_content() -> None:
    assert names(PDF, "invoice.pdf") == []
    assert names(JPEG, "invoice.pdf") == []
    assert names(TEXT, "photo.jpg") == []


def test_type_mismatch_switch_falls_back_to_the_content() -> None:
    off = HeuristicSettings(type_mismatch=False)
    assert names(PE, "invoice.pdf", settings_=off) == ["Heuristics.Executable.PE"]


# --- executables in archives ----------------------------------------------------------


@pytest.mark.parametrize("parent", ["zip", "tar", "7z", "rar", "gzip", "bzip2", "xz"])
def test_executable_inside_archive(parent: str) -> None:
    assert names(PE, "setup.exe", parent=parent) == ["Heuristics.Archive.Executable"]
    assert names(ELF, "tool", parent=parent) == ["Heuristics.Archive.Executable"]
    assert names(TEXT, "setup.exe", parent=parent) == ["Heuristics.Archive.Executable"]


@pytest.mark.parametrize("parent", ["mime", "pdf", "ole2", None])
def test_executable_outside_archives_is_not_an_archive_hit(parent: str | None) -> None:
    assert names(PE, "setup.exe", parent=parent) == ["Heuristics.Executable.PE"]


def test_archive_members_that_are_not_executables() -> None:
    assert names(PDF, "invoice.pdf", parent="zip") == []
    assert names(TEXT, "readme.txt", parent="tar") == []
    assert names(TEXT, "run.js", parent="zip") == ["Heuristics.Script.JS"]


def test_executables_in_archives_switch() -> None:
    off = HeuristicSettings(executables_in_archives=False)
    assert names(PE, "setup.exe", parent="zip", settings_=off) == ["Heuristics.Executable.PE"]


# --- ordinary business mail --------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "name", "parent"),
    [
        (PDF, "Quarterly report 2024.pdf", "mime"),
        (JPEG, "IMG_0042.jpg", "mime"),
        (TEXT, None, "mime"),
        (TEXT, "notes.txt", "zip"),
        (b"<html><body>hi</body></html>", "page.html", "mime"),
        (b"\x00\x01\x02\x03" * 100, "data.bin", "mime"),
        (b"PK\x03\x04" + b"\x00" * 40, "documents.zip", "mime"),
        (b"From: a@b\nTo: c@d\n\nhello\n", None, None),
        (b"", "empty.txt", "mime"),
    ],
)
def test_ordinary_parts_are_not_flagged(data: bytes, name: str | None, parent: str | None) -> None:
    assert names(data, name, parent=parent, settings_=ALL_ON) == []


# --- catalogue and robustness ---------------------------------------------------------


def test_names_are_unique_and_well_formed() -> None:
    assert len(set(HEURISTIC_NAMES)) == len(HEURISTIC_NAMES)
    assert all(n.startswith("Heuristics.") and n.isprintable() for n in HEURISTIC_NAMES)


def test_every_switch_defaults_on_except_encrypted_archives() -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(HeuristicSettings)}
    assert defaults.pop("encrypted_archives") is False
    assert all(value is True for value in defaults.values())


def test_hits_are_hashable_values() -> None:
    assert HeuristicHit("Heuristics.DiskImage") == HeuristicHit("Heuristics.DiskImage")
    assert len({HeuristicHit("a"), HeuristicHit("a")}) == 1


_NAME_CHARS = st.characters(codec="utf-8") | st.sampled_from(
    [".", " ", "\u202e", "\x00", "/", "\\", "\u3000", "\u200b"]
)
_MAGICS = st.sampled_from(
    [b"", PE[:80], ELF, LNK, b"PK\x03\x04", b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07\x00"]
)


@settings(max_examples=300, deadline=None)
@given(
    name=st.none() | st.text(_NAME_CHARS, max_size=300),
    head=_MAGICS,
    tail=st.binary(max_size=600),
    parent=st.sampled_from([None, "mime", "zip", "tar", "pdf", "ole2", "weird"]),
    flags=st.lists(st.booleans(), min_size=8, max_size=8),
)
def test_check_never_raises(
    name: str | None, head: bytes, tail: bytes, parent: str | None, flags: list[bool]
) -> None:
    cfg = HeuristicSettings(*flags)
    hits = names(head + tail, name, parent=parent, settings_=cfg)
    assert len(hits) <= 1
    assert all(hit in HEURISTIC_NAMES for hit in hits)
