"""Turn the command line's PATH arguments into messages to scan.

A path may be a single message (``.eml`` or any file), an mbox file (split on
``From `` lines), a Maildir (its ``cur`` and ``new``), any other folder (every
file below it, recursively, without following symbolic links) or ``-`` for
standard input.  Each yields :class:`Item` objects: a display name and either a
path (scanned by the worker, mapped when large) or bytes (mbox messages, stdin).

SECURITY: runs with the invoking user's rights; it reads only what that user
named, and never follows symlinks while recursing, so a folder of mail cannot
point the scan elsewhere.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_FROM = b"From "
_SEPARATOR = re.compile(rb"From \S+ +[A-Z][a-z]{2} [A-Z][a-z]{2} +\d")


@dataclass(frozen=True, slots=True)
class Item:
    display: str
    job: str | bytes
    size: int


def iter_items(paths: list[str], stdin: BinaryIO | None = None) -> Iterator[Item]:
    for raw in paths:
        if raw == "-":
            data = (stdin or sys.stdin.buffer).read()
            yield Item("stream", data, len(data))
            continue
        path = Path(raw)
        if path.is_dir():
            yield from _folder(path)
        elif path.exists():
            yield from _file(path)
        else:
            # the scanner reports the error for this item; the rest go on
            yield Item(raw, raw, 0)


def count_hint(paths: list[str]) -> int | None:
    """Rough number of files, for a progress bar; None when unknown (stdin)."""
    total = 0
    for raw in paths:
        if raw == "-":
            return None
        path = Path(raw)
        if path.is_dir():
            total += sum(len(files) for _, _, files in os.walk(path))
        else:
            total += 1
    return total


def is_mbox(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(5) == _FROM
    except OSError:
        return False


def _folder(path: Path) -> Iterator[Item]:
    if (path / "cur").is_dir() and (path / "new").is_dir():
        roots = [path / "cur", path / "new"]
    else:
        roots = [path]
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames.sort()
            for name in sorted(filenames):
                file = Path(dirpath) / name
                if file.is_symlink() or not file.is_file():
                    continue
                yield from _file(file)


def _file(path: Path) -> Iterator[Item]:
    if is_mbox(path):
        yield from _mbox(path)
        return
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    yield Item(str(path), str(path), size)


def _mbox(path: Path) -> Iterator[Item]:
    """Split an mbox (mboxo/mboxrd) on ``From `` separator lines, undoing ``>From`` quoting."""
    index = 0
    current: list[bytes] = []

    def finish() -> Item:
        data = b"".join(current)
        return Item(f"{path}[{index}]", data, len(data))

    previous_blank = True
    with path.open("rb") as fh:
        for line in fh:
            # a separator is a "From SENDER DATE" line at the start or after a
            # blank line; a body line "From the ..." after a blank line is not
            if previous_blank and _SEPARATOR.match(line):
                previous_blank = False
                if current:
                    yield finish()
                    current = []
                index += 1
                continue
            previous_blank = line in (b"\n", b"\r\n")
            if line.startswith(b">") and line.lstrip(b">").startswith(_FROM):
                line = line[1:]
            current.append(line)
    if current or index:
        yield finish()
