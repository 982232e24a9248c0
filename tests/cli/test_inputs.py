"""Enumerating messages from the command line: files, mboxes, Maildirs, folders, stdin."""

from __future__ import annotations

import io
import os
from pathlib import Path

from mailwarden.cli.inputs import iter_items

MSG = b"From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n"


def test_mbox_is_split_on_from_lines_after_blank_lines(tmp_path: Path) -> None:
    box = tmp_path / "box.mbox"
    box.write_bytes(
        b"From a@example.com Mon Jan  1 00:00:00 2024\n"
        b"Subject: one\n\nFrom the start of a line, unquoted\n>From quoted\n\n"
        b"From b@example.com Mon Jan  1 00:00:00 2024\n"
        b"Subject: two\n\nbody\n"
    )
    items = list(iter_items([str(box)]))
    assert [i.display for i in items] == [f"{box}[1]", f"{box}[2]"]
    first = items[0].job
    assert isinstance(first, bytes)
    assert b"From the start of a line" in first
    assert b"\nFrom quoted" in first  # >From unquoted
    assert items[1].job == b"Subject: two\n\nbody\n"


def test_maildir_reads_cur_and_new_only(tmp_path: Path) -> None:
    for sub in ("cur", "new", "tmp"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / f"1.{sub}").write_bytes(MSG)
    names = sorted(Path(str(i.job)).name for i in iter_items([str(tmp_path)]))
    assert names == ["1.cur", "1.new"]


def test_folder_recursion_skips_symlinks(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "m.eml").write_bytes(MSG)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.eml"
    outside.write_bytes(MSG)
    os.symlink(outside, tmp_path / "link.eml")
    items = list(iter_items([str(tmp_path)]))
    assert [Path(str(i.job)).name for i in items] == ["m.eml"]


def test_stdin_and_missing_path() -> None:
    items = list(iter_items(["-", "/nonexistent/x.eml"], stdin=io.BytesIO(MSG)))
    assert items[0].display == "stream" and items[0].job == MSG
    assert items[1].job == "/nonexistent/x.eml"
