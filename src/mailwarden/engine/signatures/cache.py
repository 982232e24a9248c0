"""On-disk cache of a compiled signature set.

The loader stores, under ``cache_dir``, one file per distinct set of
signature files: ``<key>.mwsig`` where ``key`` is the SHA-256 of our format
version, the matcher kind and every signature file's name and content.  A
file holds a JSON description plus binary blobs (hash indexes, the Hyperscan
database), laid out as::

    MAGIC | u32 header length | header JSON | pad | blob 0 | pad | blob 1 | ...

where each blob starts at a multiple of 8 bytes from the start of the file,
so integer columns can be cast in place.  The header names the key, the blob
lengths and the SHA-256 of everything after it.  :func:`read_cache` maps the
file and hands out ``memoryview`` slices of the mapping (no copy); after the
checksum it tells the kernel the pages need not stay mapped, so they count
against the process only when a lookup touches them again, and forked
workers and other processes share them through the page cache.

:func:`write_cache` writes to a temporary file in the same directory (mode
0600), syncs it and renames it into place, so a reader never sees half a
file.  :func:`read_cache` returns ``None`` (and the caller
rebuilds) when the file is missing, has the wrong key, fails its checksum, is
not owned by us, or is writable by others.

SECURITY: the cache is data, never code: no pickle or marshal, only JSON and
byte strings whose layout is checked.  Cache files and the directory are
created private to the running user (0600 / 0700).  A cache file is replaced
by rename, never rewritten in place, so a mapping a process holds keeps its
contents.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import stat
import struct
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mailwarden.engine.signatures.packed import Blob

MAGIC = b"MWSIGCACHE\x00\x02"
_ALIGN = 8
_LEN = struct.Struct(">I")
#: A cache bigger than this is not ours to load.
MAX_CACHE = 8 << 30


def cache_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / f"{key}.mwsig"


def _pad(pos: int) -> int:
    return -pos % _ALIGN


def write_cache(cache_dir: Path, key: str, meta: dict[str, Any], blobs: Sequence[Blob]) -> Path:
    """Write atomically; returns the final path. OSError propagates to the caller."""
    cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    digest = hashlib.sha256()
    meta_bytes = json.dumps(meta, separators=(",", ":")).encode()
    parts = [memoryview(meta_bytes), *(memoryview(b).cast("B") for b in blobs)]
    for part in parts:
        digest.update(part)
    header = json.dumps(
        {"key": key, "lengths": [p.nbytes for p in parts], "sha256": digest.hexdigest()}
    ).encode()
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".mwsig", dir=cache_dir)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            head = MAGIC + _LEN.pack(len(header)) + header
            out.write(head)
            pos = len(head)
            for part in parts:
                out.write(bytes(_pad(pos)))
                pos += _pad(pos)
                out.write(part)
                pos += part.nbytes
            out.flush()
            os.fsync(out.fileno())
        final = cache_path(cache_dir, key)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return final


def read_cache(cache_dir: Path, key: str) -> tuple[dict[str, Any], list[memoryview]] | None:
    """The cached (meta, blobs) for ``key``, or None when absent or untrustworthy.

    The blobs are views of a read-only mapping of the file, which stays mapped
    as long as one of them is referenced.
    """
    path = cache_path(cache_dir, key)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if (
            not stat.S_ISREG(info.st_mode)
            or info.st_uid != os.geteuid()
            or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
            or not 0 < info.st_size <= MAX_CACHE
        ):
            return None
        view = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        parsed = _parse(view, key)
        if parsed is None:
            view.close()
            return None
        if hasattr(mmap, "MADV_DONTNEED"):
            # the checksum read every page; let them go until a lookup needs one
            view.madvise(mmap.MADV_DONTNEED)
        return parsed
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


def _parse(view: mmap.mmap, key: str) -> tuple[dict[str, Any], list[memoryview]] | None:
    start = len(MAGIC) + _LEN.size
    if view[: len(MAGIC)] != MAGIC or len(view) < start:
        return None
    (hlen,) = _LEN.unpack(view[len(MAGIC) : start])
    header = json.loads(view[start : start + hlen])
    if not isinstance(header, dict) or header.get("key") != key:
        return None
    lengths = header.get("lengths")
    if (
        not isinstance(lengths, list)
        or not lengths
        or not all(isinstance(n, int) and n >= 0 for n in lengths)
    ):
        return None
    pos = start + hlen
    spans: list[tuple[int, int]] = []
    for n in lengths:
        pos += _pad(pos)
        spans.append((pos, pos + n))
        pos += n
    if pos != len(view):
        return None
    whole = memoryview(view)
    digest = hashlib.sha256()
    for begin, end in spans:
        digest.update(whole[begin:end])
    if digest.hexdigest() != header.get("sha256"):
        whole.release()
        return None
    parts = [whole[begin:end] for begin, end in spans]
    meta = json.loads(bytes(parts[0]))
    if not isinstance(meta, dict):
        return None
    return meta, parts[1:]
