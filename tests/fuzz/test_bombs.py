"""Bombs through the whole engine, with memory bounded by RLIMIT_AS in a child.

tests/engine/unpack/test_bombs.py measures each extractor with tracemalloc,
which sees only Python's allocations.  Here the same kinds of bomb, plus the
message-level ones (10,000 parts, 64 KB header lines), go through
``Engine.scan_bytes`` with default limits in a child process whose address
space is capped (``bombscan.py``): memory spent inside zlib, lzma, bz2 or
py7zr counts too.  Each must end in a verdict within the cap: ``unscanned``
naming the limit for a bomb, ``infected`` where EICAR is still reachable.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "engine" / "unpack"))
from unpack_support import deflated_zeros, sevenzip_zeros, xz_zeros, zip64_single

MiB = 1024 * 1024
GiB = 1024 * MiB
#: what a scan may add to the address space of a loaded engine
HEADROOM = 384 * MiB
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
CHILD = Path(__file__).with_name("bombscan.py")


def _mail(*parts: bytes, headers: bytes = b"") -> bytes:
    head = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: bomb\r\nMIME-Version: 1.0\r\n"
    out = [head + headers + b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n']
    out += [b"--B\r\n" + part + b"\r\n" for part in parts]
    return b"".join(out) + b"--B--\r\n"


def _attachment(name: str, data: bytes) -> bytes:
    return (
        b"Content-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="' + name.encode() + b'"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(data).replace(b"\n", b"\r\n")
    )


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def _gzip_raw(deflated: bytes) -> bytes:
    # header, raw deflate, a trailer the limits stop long before
    return b"\x1f\x8b\x08\x00" + bytes(6) + deflated + bytes(8)


def _nested_zip() -> bytes:
    data = _zip([("0.bin", bytes(4 * MiB))])
    for level in range(5):
        data = _zip([(f"{level}-{i}.zip", data) for i in range(10)])
    return data  # 400 GB if fully expanded


def _bz2_zeros(size: int) -> bytes:
    comp = bz2.BZ2Compressor(9)
    return b"".join(comp.compress(bytes(MiB)) for _ in range(size // MiB)) + comp.flush()


def _long_header_lines() -> bytes:
    long = b"x" * (64 * 1024)
    headers = (
        b"Subject: " + long + b"\r\n"
        b"X-Folded: " + b"\r\n ".join([b"y" * 1000] * 64) + b"\r\n"
        b"Received: from " + long + b"\r\n"
    )
    part = (
        b'Content-Type: application/octet-stream; name="' + long + b'.exe"\r\n'
        b'Content-Disposition: attachment; filename="' + long + b'"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(EICAR)
    )
    return _mail(part, headers=headers)


def _ten_thousand_parts() -> bytes:
    parts = [b"Content-Type: text/plain\r\n\r\npart %d" % i for i in range(9_999)]
    return _mail(*parts, _attachment("last.com", EICAR))


def _long_boundary() -> bytes:
    boundary = b"b" * (64 * 1024)
    return (
        b"From: a@example.org\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n'
        b"--" + boundary + b"\r\n" + _attachment("e.com", EICAR) + b"\r\n--" + boundary + b"--\r\n"
    )


Expect = tuple[str, str | None]  # status, word the reason must contain
BOMBS: dict[str, tuple[Callable[[], bytes], Expect]] = {
    "zip-10GiB-member": (
        lambda: _mail(_attachment("z.zip", zip64_single("z", deflated_zeros(10 * GiB), 10 * GiB))),
        ("unscanned", "limit"),
    ),
    "nested-zip-42-style": (
        lambda: _mail(_attachment("42.zip", _nested_zip())),
        ("unscanned", "limit"),
    ),
    "gzip-of-gzip": (
        lambda: _mail(_attachment("x.gz", gzip.compress(_gzip_raw(deflated_zeros(4 * GiB)), 9))),
        ("unscanned", "limit"),
    ),
    "xz-256MiB": (lambda: _mail(_attachment("x.xz", xz_zeros(256 * MiB))), ("unscanned", "limit")),
    "bzip2-64MiB": (
        lambda: _mail(_attachment("x.bz2", _bz2_zeros(64 * MiB))),
        ("unscanned", "limit"),
    ),
    "7z-128MiB": (
        lambda: _mail(_attachment("x.7z", sevenzip_zeros(128 * MiB))),
        ("unscanned", "limit"),
    ),
    "ten-thousand-parts": (_ten_thousand_parts, ("infected", None)),
    "64KB-header-lines": (_long_header_lines, ("infected", None)),
    "64KB-boundary": (_long_boundary, ("infected", None)),
}


def _scan_in_child(raw: bytes, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "bomb.eml"
    path.write_bytes(raw)
    done = subprocess.run(
        [sys.executable, str(CHILD), str(path), str(HEADROOM)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BOMBS))
def test_bomb_ends_in_a_verdict_within_the_memory_cap(name: str, tmp_path: Path) -> None:
    build, (status, word) = BOMBS[name]
    result = _scan_in_child(build(), tmp_path)
    print(name, result)  # the figures docs/reliability.md quotes (pytest -s)
    assert result["status"] == status, result
    if word is not None:
        assert word in (result["reason"] or ""), result
    if status == "infected":
        assert result["findings"] == ["Eicar-Test-Signature"], result


def test_the_cap_really_bites(tmp_path: Path) -> None:
    # the same cap fails a process that does need more: the verdicts above mean something
    path = tmp_path / "big.eml"
    with path.open("wb") as fh:
        fh.truncate(HEADROOM + 128 * MiB)
    cap = f"resource.setrlimit(resource.RLIMIT_AS, ({HEADROOM}, {HEADROOM}))"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import resource, sys; {cap}; open(sys.argv[1], 'rb').read()",
            path,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0 and "MemoryError" in done.stderr
