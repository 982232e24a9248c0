"""ClamAV database containers: ``.cvd``, ``.cld`` and ``.cud``.

A container is a 512-byte text header
``ClamAV-VDB:build time:version:signatures:functionality level:MD5:signature:builder:time``
padded with spaces or NULs, followed by a tar archive: gzipped in a ``.cvd``
and a ``.cud``, gzipped or plain in a ``.cld`` (freshclam writes both, so the
compression is detected, not assumed).  :func:`read_header` parses the
header; :func:`members` yields ``(name, bytes)`` for each regular member,
``.ign2`` members first so ignore lists apply to the rest.

For ``.cvd`` files the header's MD5 of the archive is checked.  The RSA
digital signature over it is NOT verified: containers are trusted to come
from the administrator's freshclam or mirror, like any other database file.

SECURITY: the archive is read in memory and nothing is ever written to the
file system, so member names cannot escape anywhere; members larger than
:data:`MAX_MEMBER` bytes and links or devices are rejected.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mailwarden.errors import SignatureError

HEADER_SIZE = 512
MAX_MEMBER = 1 << 30
CONTAINER_EXTS = frozenset({"cvd", "cld", "cud"})


@dataclass(frozen=True, slots=True)
class CvdHeader:
    build_time: str
    version: int
    signatures: int
    flevel: int
    md5: str
    builder: str


def read_header(data: bytes, *, file: str) -> CvdHeader:
    """Parse the 512-byte header; SignatureError if it is not one."""
    text = data[:HEADER_SIZE].rstrip(b"\x00 \n").decode("ascii", "replace")
    fields = text.split(":")
    if len(data) < HEADER_SIZE or fields[0] != "ClamAV-VDB" or len(fields) < 6:
        raise SignatureError("not a ClamAV database container (bad header)", file=file)
    try:
        return CvdHeader(
            build_time=fields[1],
            version=int(fields[2]),
            signatures=int(fields[3]),
            flevel=int(fields[4]),
            md5=fields[5],
            builder=fields[7] if len(fields) > 7 else "",
        )
    except ValueError:
        raise SignatureError("bad number in container header", file=file) from None


def members(path: Path) -> tuple[CvdHeader, Iterator[tuple[str, bytes]]]:
    """The header and an iterator over the archive's regular members."""
    data = path.read_bytes()
    header = read_header(data, file=str(path))
    if path.suffix == ".cvd":
        actual = hashlib.md5(data[HEADER_SIZE:], usedforsecurity=False).hexdigest()
        if actual != header.md5.lower():
            raise SignatureError("archive MD5 does not match the header", file=str(path))
    return header, _iter_members(data[HEADER_SIZE:], str(path))


def _iter_members(archive: bytes, file: str) -> Iterator[tuple[str, bytes]]:
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            infos = [m for m in tar.getmembers() if m.isfile()]
            infos.sort(key=lambda m: not m.name.endswith(".ign2"))
            for info in infos:
                if info.size > MAX_MEMBER:
                    raise SignatureError(f"member {info.name!r} is too large", file=file)
                handle = tar.extractfile(info)
                if handle is None:
                    continue
                yield info.name.rsplit("/", 1)[-1], handle.read(MAX_MEMBER + 1)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise SignatureError(f"damaged archive: {exc}", file=file) from None
