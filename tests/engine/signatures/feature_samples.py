"""Sample payloads for the hand-written feature signatures.

``tests/data/signatures/features.ndb`` and ``features.ldb`` hold one signature
per body-pattern feature (wildcards, nibbles, gaps, alternatives, offsets,
target types, logical expressions, subsignature modifiers).  :func:`samples`
builds, for each feature, payloads that must match it and payloads that must
not, each with the name clamd is expected to report (``None``: clean).
:func:`hash_databases` writes the hash, allowlist and ignore databases that
belong to these samples (their content depends on the samples' digests).

Reused by the end-to-end clamd comparison: import this module, write the
samples and the databases into folders and compare names per file.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "signatures"
FEATURE_DBS = ("features.ndb", "features.ldb")

#: 16 bytes that make a payload binary for both engines (offset tests count from here)
HEAD = b"\x00\xffMWTEST\x00\x01\x02\x03\x04\x05\x06\x07"
TAIL = b"\x00\xfe\x00\xfd tail bytes \x00"


@dataclass(frozen=True)
class Sample:
    file: str
    data: bytes
    expect: str | None


def _bin(*parts: bytes) -> bytes:
    return HEAD + b"".join(parts) + TAIL


def _pe(marker: bytes) -> bytes:
    """A minimal PE32 image with one section whose raw data holds ``marker``."""
    dos = bytearray(0x40)
    dos[0:2] = b"MZ"
    dos[0x3C:0x40] = struct.pack("<I", 0x40)
    coff = struct.pack("<HHIIIHH", 0x14C, 1, 0, 0, 0, 0xE0, 0x0102)
    opt = bytearray(0xE0)
    opt[0:2] = struct.pack("<H", 0x10B)
    struct.pack_into("<I", opt, 16, 0x1000)  # entry point
    struct.pack_into("<I", opt, 32, 0x1000)  # section alignment
    struct.pack_into("<I", opt, 36, 0x200)  # file alignment
    struct.pack_into("<I", opt, 56, 0x2000)  # size of image
    struct.pack_into("<I", opt, 60, 0x200)  # size of headers
    struct.pack_into("<I", opt, 92, 16)  # number of data directories
    section = struct.pack(
        "<8sIIIIIIHHI", b".text", 0x1000, 0x1000, 0x200, 0x200, 0, 0, 0, 0, 0x60000020
    )
    header = bytes(dos) + b"PE\x00\x00" + coff + bytes(opt) + section
    body = (b"\xc3" + marker).ljust(0x200, b"\x90")
    return header.ljust(0x200, b"\x00") + body


def pe_section_of(data: bytes) -> bytes:
    """The raw data of the single section :func:`_pe` writes."""
    return data[0x200:0x400]


def samples() -> list[Sample]:
    s: list[Sample] = []

    def add(file: str, data: bytes, expect: str | None) -> None:
        s.append(Sample(file, data, expect))

    # --- .ndb pattern features (target 0) ---
    add("plain.bin", _bin(b"xx plain-feature-001 yy"), "Feat.Plain")
    add("anybyte.bin", _bin(b"anybyte-Q-feat02"), "Feat.AnyByte")
    add("hinib.bin", _bin(b"hinib-K-feat03"), "Feat.HighNibble")
    add("hinib-no.bin", _bin(b"hinib-k-feat03"), None)
    add("lonib.bin", _bin(b"lonib-u-feat04"), "Feat.LowNibble")
    add("lonib-no.bin", _bin(b"lonib-v-feat04"), None)
    add("star.bin", _bin(b"star-left-05", b"\x01" * 300, b"star-right-05"), "Feat.Star")
    add("star-no.bin", _bin(b"star-right-05 star-left-05"), None)
    add("gapn.bin", _bin(b"gapn-06a1234gapn-06b"), "Feat.GapExact")
    add("gapn-no.bin", _bin(b"gapn-06a12345gapn-06b"), None)
    add("gapmin.bin", _bin(b"gapmin-07a0123456789gapmin-07b"), "Feat.GapMin")
    add("gapmin-no.bin", _bin(b"gapmin-07a01gapmin-07b"), None)
    add("gapmax.bin", _bin(b"gapmax-08a01gapmax-08b"), "Feat.GapMax")
    add("gapmax-no.bin", _bin(b"gapmax-08a0123gapmax-08b"), None)
    add("gaprng.bin", _bin(b"gaprng-09a012gaprng-09b"), "Feat.GapRange")
    add("gaprng-no.bin", _bin(b"gaprng-09a01234gaprng-09b gaprng-09a0gaprng-09b"), None)
    add("alt1.bin", _bin(b"alt1-10B-end"), "Feat.Alt")
    add("alt1-no.bin", _bin(b"alt1-10D-end"), None)
    add("altm.bin", _bin(b"altm-11CD-end"), "Feat.AltMulti")
    add("altm-no.bin", _bin(b"altm-11AC-end"), None)
    add("neg1.bin", _bin(b"neg1-12Z-end"), "Feat.NotAlt")
    add("neg1-no.bin", _bin(b"neg1-12A-end"), None)
    add("negm.bin", _bin(b"negm-13AC-end"), "Feat.NotAltMulti")
    add("negm-no.bin", _bin(b"negm-13CD-end"), None)
    add("anchor.bin", _bin(b"anch-14xy123Z"), "Feat.Anchored")
    add("anchor-no.bin", _bin(b"anch-14xy123456Z"), None)
    add("galt.bin", _bin(b"galt-15AxC-end"), "Feat.GenericAlt")
    add("galt2.bin", _bin(b"galt-15DD-end"), "Feat.GenericAlt")
    add("galt-no.bin", _bin(b"galt-15AxD-end"), None)
    # --- offsets (HEAD is 16 bytes) ---
    add("offabs.bin", _bin(b"offabs-20 pad"), "Feat.OffsetAbs")
    add("offabs-no.bin", _bin(b"-offabs-20 pad"), None)
    add("offflt.bin", _bin(b"1234offflt-21 pad"), "Feat.OffsetFloat")
    add("offflt-no.bin", _bin(b"123456789012offflt-21 pad"), None)
    eof_tail_len = 40 - len(b"offeof-22") - len(TAIL)
    add("offeof.bin", _bin(b"pad offeof-22" + b"e" * eof_tail_len), "Feat.OffsetEof")
    add("offeof-no.bin", _bin(b"pad offeof-22" + b"e" * (eof_tail_len + 1)), None)
    add("offeoffl.bin", _bin(b"offeofl-23" + b"f" * 20), "Feat.OffsetEofFloat")
    add("offeoffl-no.bin", _bin(b"offeofl-23" + b"f" * 40), None)
    # --- target types ---
    add("target-pe.exe", _pe(b"pe-target-30"), "Feat.TargetPE")
    add("target-pe-no.bin", _bin(b"pe-target-30"), None)
    add(
        "target-html.html",
        b'<HTML><BODY><!-- hidden --><A  HREF = "X" >Click</A> Here</BODY></HTML>\n',
        "Feat.TargetHTML",
    )
    add("target-html-no.html", b'<HTML><BODY><A HREF="Y">Click</A></BODY></HTML>\n', None)
    add(
        "target-text.txt",
        b"Some words.\nText   FEATURE\n\tSeven and more words.\n",
        "Feat.TargetText",
    )
    add("target-text-no.bin", _bin(b"text feature seven"), None)
    add(
        "target-mail.eml",
        b"From: a@example.org\nTo: b@example.org\nSubject: test\n\nmail-feature-40 here\n",
        "Feat.TargetMail",
    )
    add("target-mail-no.bin", _bin(b"mail-feature-40"), None)
    add(
        "target-png.png",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 8 + b"png-feature-50" + b"\x00" * 32,
        "Feat.TargetGraphics",
    )
    add("target-png-no.bin", _bin(b"png-feature-50"), None)
    add(
        "target-pdf.pdf",
        b"%PDF-1.4\n% pdf-feature-100\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n",
        "Feat.TargetPDF",
    )
    add("target-pdf-no.bin", _bin(b"pdf-feature-100"), None)
    # --- logical signatures ---
    add("ldb-and.bin", _bin(b"ldband-a ldband-b"), "Feat.Ldb.And")
    add("ldb-and-no.bin", _bin(b"ldband-a only"), None)
    add("ldb-or.bin", _bin(b"ldbor-b ldbor-c"), "Feat.Ldb.Or")
    add("ldb-or-no.bin", _bin(b"ldbor-a ldbor-b"), None)
    add("ldb-eq.bin", _bin(b"ldbeq-x ldbeq-x"), "Feat.Ldb.Eq")
    add("ldb-eq-no.bin", _bin(b"ldbeq-x ldbeq-x ldbeq-x"), None)
    add("ldb-gt.bin", _bin(b"ldbgt-x ldbgt-x ldbgt-x"), "Feat.Ldb.Gt")
    add("ldb-gt-no.bin", _bin(b"ldbgt-x ldbgt-x"), None)
    add("ldb-lt.bin", _bin(b"ldblt-a ldblt-b"), "Feat.Ldb.Lt")
    add("ldb-lt-no.bin", _bin(b"ldblt-a ldblt-b ldblt-b"), None)
    add("ldb-eqd.bin", _bin(b"ldbeqd-a ldbeqd-b"), "Feat.Ldb.EqDistinct")
    add("ldb-eqd-no.bin", _bin(b"ldbeqd-a ldbeqd-a"), None)
    add("ldb-gtd.bin", _bin(b"ldbgtd-a ldbgtd-a ldbgtd-b"), "Feat.Ldb.GtDistinct")
    add("ldb-gtd-no.bin", _bin(b"ldbgtd-a ldbgtd-a ldbgtd-a"), None)
    add("ldb-not.bin", _bin(b"ldbnot-a alone"), "Feat.Ldb.Not")
    add("ldb-not-no.bin", _bin(b"ldbnot-a ldbnot-b"), None)
    add("ldb-nocase.bin", _bin(b"NoCase-MARKER"), "Feat.Ldb.Nocase")
    add("ldb-nocase-no.bin", _bin(b"NoCase_MARKER"), None)
    add("ldb-wide.bin", _bin("widemark".encode("utf-16-le")), "Feat.Ldb.Wide")
    add("ldb-wide-no.bin", _bin(b"widemark"), None)
    add("ldb-wa-ascii.bin", _bin(b"wamark2"), "Feat.Ldb.WideAscii")
    add("ldb-wa-wide.bin", _bin("wamark2".encode("utf-16-le")), "Feat.Ldb.WideAscii")
    add("ldb-full.bin", _bin(b"a fwmarker b"), "Feat.Ldb.Fullword")
    add("ldb-full-no.bin", _bin(b"afwmarkerb"), None)
    add("ldb-off.bin", _bin(b"ldboff-1 pad"), "Feat.Ldb.Offset")
    add("ldb-off-no.bin", _bin(b"xxxxldboff-1 pad"), None)
    add(
        "ldb-size.bin",
        _bin(b"ldbsize-1".ljust(150 - len(HEAD) - len(TAIL), b".")),
        "Feat.Ldb.FileSize",
    )
    add("ldb-size-no.bin", _bin(b"ldbsize-1".ljust(300, b".")), None)
    add("ldb-text.txt", b"Words before.\nLDB  Text\nSeven words after.\n", "Feat.Ldb.TargetText")
    add("ldb-text-no.bin", _bin(b"ldb text seven"), None)
    # --- hash databases (written by hash_databases) ---
    add("hash-md5.bin", _bin(b"payload for an md5 hash signature"), "Feat.Hash.MD5")
    add("hash-sha1.bin", _bin(b"payload for a sha1 hash signature"), "Feat.Hash.SHA1")
    add("hash-sha256.bin", _bin(b"payload for a sha256 hash signature"), "Feat.Hash.SHA256")
    add("hash-any-size.bin", _bin(b"payload for a wildcard-size hash"), "Feat.Hash.AnySize")
    add("hash-section.exe", _pe(b"section hashed by an mdb signature"), "Feat.Hash.Section")
    add("allowlisted.bin", _bin(b"xx plain-feature-001 but allowlisted"), None)
    add("ignored.bin", _bin(b"ignored-feature-900"), None)
    return s


def hash_databases(all_samples: list[Sample]) -> dict[str, str]:
    """Database files (name -> text) whose entries depend on the samples' bytes."""
    by_file = {x.file: x.data for x in all_samples}

    def md5(d: bytes) -> str:
        return hashlib.md5(d, usedforsecurity=False).hexdigest()

    md5_data = by_file["hash-md5.bin"]
    sha1_data = by_file["hash-sha1.bin"]
    sha256_data = by_file["hash-sha256.bin"]
    any_data = by_file["hash-any-size.bin"]
    section = pe_section_of(by_file["hash-section.exe"])
    allowed = by_file["allowlisted.bin"]
    sha1 = hashlib.sha1(sha1_data, usedforsecurity=False).hexdigest()
    return {
        "features.hdb": f"{md5(md5_data)}:{len(md5_data)}:Feat.Hash.MD5\n",
        "features.hsb": (
            f"{sha1}:{len(sha1_data)}:Feat.Hash.SHA1\n"
            f"{hashlib.sha256(sha256_data).hexdigest()}:{len(sha256_data)}:Feat.Hash.SHA256\n"
            f"{hashlib.sha256(any_data).hexdigest()}:*:Feat.Hash.AnySize:73\n"
        ),
        "features.mdb": f"{len(section)}:{md5(section)}:Feat.Hash.Section\n",
        "features.fp": f"{md5(allowed)}:{len(allowed)}:Allowed.Sample\n",
        "features.ign2": "Feat.Ignored\n",
    }


def write_databases(folder: Path, all_samples: list[Sample]) -> None:
    """Copy the feature databases and write the sample-dependent ones into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in FEATURE_DBS:
        (folder / name).write_bytes((DATA_DIR / name).read_bytes())
    for name, text in hash_databases(all_samples).items():
        (folder / name).write_text(text)


def write_samples(folder: Path, all_samples: list[Sample]) -> dict[Path, Sample]:
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[Path, Sample] = {}
    for sample in all_samples:
        path = folder / sample.file
        path.write_bytes(sample.data)
        out[path] = sample
    return out
