"""Fuzzing every unpacker through the engine: archives nested in archives.

Inputs are chains of up to five containers (zip with each compression method,
tar, gzip, bzip2, xz, 7z, RAR, PDF embedded files, OLE2 streams; TNEF has
its own mutation fuzzing in tests/engine/unpack/test_tnef.py) around a payload, with
member names an attacker would choose (``../../etc/passwd``, absolute paths,
NUL, bidi overrides, very long names).  Two properties:

* an intact chain with EICAR at the bottom is found (names never stop the
  walk, every format in the chain is opened);
* the same chain with bytes flipped, cut or duplicated anywhere always gets a
  verdict other than ``error``: damaged input is read as far as it goes.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import sys
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import py7zr
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz.budget import fuzz
from mailwarden.engine import Engine, EngineSettings
from mailwarden.verdict import Status

sys.path.insert(0, str(Path(__file__).parents[1] / "engine" / "unpack"))
sys.path.insert(0, str(Path(__file__).parents[1] / "engine" / "heuristics"))
from ole2_builder import build as ole2_build
from ole2_builder import stream as ole2_stream
from unpack_support import rar4_stored

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

HOSTILE_NAMES = [
    "../../etc/passwd",
    "/etc/cron.d/evil",
    "..\\..\\windows\\system32\\x.dll",
    "a\x00b.exe",
    "invoice\u202etxt.exe",
    "x" * 300,
    "dir/",
    "",
    ".",
    "CON",
    "\u2025/\uff0e\uff0e/x",
]
#: the part name of the scanned object itself when it is not read as mail
ROOT = ""
_names = st.one_of(st.sampled_from(HOSTILE_NAMES), st.text(max_size=30))


def _zip(method: int) -> Callable[[bytes, str], bytes]:
    def wrap(data: bytes, name: str) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=method) as zf:
            zf.writestr(zipfile.ZipInfo(name.replace("\x00", "_") or "_"), data)
        return buf.getvalue()

    return wrap


def _tar(data: bytes, name: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo(name.replace("\x00", "_") or "_")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _7z(data: bytes, name: str) -> bytes:
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as arc:
        # py7zr itself refuses names that climb out; the bytes are what matter here
        arc.writestr(data, "m-" + "".join(c for c in name if c.isalnum())[:40])
    return buf.getvalue()


def _rar(data: bytes, name: str) -> bytes:
    return rar4_stored([(name.replace("\x00", "_") or "_", data)])


def _pdf(data: bytes, name: str) -> bytes:
    stream = zlib.compress(data)
    label = name.encode("utf-8", "replace").replace(b"(", b"").replace(b")", b"")[:60]
    head = b"4 0 obj\n<< /Type /EmbeddedFile /Filter /FlateDecode /Length %d >>\n" % len(stream)
    return (
        b"%PDF-1.7\n"
        + head
        + b"stream\r\n"
        + stream
        + b"\r\nendstream\nendobj\n5 0 obj\n<< /F ("
        + label
        + b") /EF << /F 4 0 R >> >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )


def _ole2(data: bytes, _name: str) -> bytes:
    # stream names are at most 31 characters of the document's own choosing
    return ole2_build(ole2_stream("Contents", data))


WRAPPERS: dict[str, Callable[[bytes, str], bytes]] = {
    "zip-stored": _zip(zipfile.ZIP_STORED),
    "zip-deflated": _zip(zipfile.ZIP_DEFLATED),
    "zip-bzip2": _zip(zipfile.ZIP_BZIP2),
    "zip-lzma": _zip(zipfile.ZIP_LZMA),
    "tar": _tar,
    "gzip": lambda d, _n: gzip.compress(d, mtime=0),
    "bzip2": lambda d, _n: bz2.compress(d),
    "xz": lambda d, _n: lzma.compress(d),
    "7z": _7z,
    "rar": _rar,
    "pdf": _pdf,
    "ole2": _ole2,
}

_chains = st.lists(st.tuples(st.sampled_from(sorted(WRAPPERS)), _names), min_size=1, max_size=5)


def _build(payload: bytes, chain: list[tuple[str, str]]) -> bytes:
    data = payload
    for kind, name in chain:
        data = WRAPPERS[kind](data, name)
    return data


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return Engine.load(EngineSettings(bundled=True, cache_dir=tmp_path_factory.mktemp("cache")))


def test_every_wrapper_alone_is_opened(engine: Engine) -> None:
    # the fuzz property below means something only if each format is really read
    for kind, wrap in WRAPPERS.items():
        verdict = engine.scan_bytes(wrap(b"padding " + EICAR[::-1], "x.bin"), as_mail=False)
        assert verdict.status is Status.CLEAN, kind
        verdict = engine.scan_bytes(wrap(b"padding\n" + EICAR, "x.bin"), as_mail=False)
        assert verdict.status is Status.INFECTED, kind
        # found inside the container, not in its raw bytes
        assert verdict.findings[0].part != ROOT, (kind, verdict)


@fuzz(150)
@given(chain=_chains, junk=st.binary(max_size=64))
def test_eicar_at_the_bottom_of_any_chain_is_found(
    engine: Engine, chain: list[tuple[str, str]], junk: bytes
) -> None:
    verdict = engine.scan_bytes(_build(junk + b"\n" + EICAR, chain), as_mail=False)
    assert verdict.status is Status.INFECTED, (chain, verdict)
    assert verdict.name == "Eicar-Test-Signature"


@st.composite
def _damaged(draw: st.DrawFn) -> bytes:
    data = bytearray(_build(b"payload " * draw(st.integers(1, 200)), draw(_chains)))
    for _ in range(draw(st.integers(1, 8))):
        # a position as a fraction: 7z archives carry the time, so lengths vary
        at = draw(st.integers(0, 2**16 - 1)) * len(data) >> 16
        op = draw(st.sampled_from(["flip", "cut", "dup", "insert"]))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[at : at + draw(st.integers(1, 512))]
        elif op == "dup":
            data[at:at] = data[at : at + draw(st.integers(1, 512))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
    return bytes(data)


@fuzz(250)
@given(data=_damaged())
def test_a_damaged_chain_always_gets_a_verdict(engine: Engine, data: bytes) -> None:
    verdict = engine.scan_bytes(data, as_mail=False)
    assert verdict.status is not Status.ERROR, verdict.reason
    assert verdict.size == len(data)
