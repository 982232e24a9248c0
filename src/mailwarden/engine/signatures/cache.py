"""On-disk cache of a compiled signature set.

The loader stores, under ``cache_dir``, one file per distinct set of
signature files: ``<key>.mwsig`` where ``key`` is the SHA-256 of our format
version, the matcher kind and every signature file's name and content.  A
file holds a JSON description plus binary blobs (hash indexes, the Hyperscan
database), laid out as::

    MAGIC | u32 header length | header JSON | blob 0 | blob 1 | ...

The header names the key, the blob lengths and the SHA-256 of everything
after it.  :func:`write_cache` writes to a temporary file in the same
directory (mode 0600), syncs it and renames it into place, so a reader never
sees half a file.  :func:`read_cache` returns ``None`` (and the caller
rebuilds) when the file is missing, has the wrong key, fails its checksum, is
not owned by us, or is writable by others.

SECURITY: the cache is data, never code: no pickle or marshal, only JSON and
byte strings whose layout is checked.  Cache files and the directory are
created private to the running user (0600 / 0700).
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
from pathlib import Path
from typing import Any

MAGIC = b"MWSIGCACHE\x00\x01"
_LEN = struct.Struct(">I")
#: A cache bigger than this is not ours to load.
MAX_CACHE = 8 << 30


def cache_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / f"{key}.mwsig"


def write_cache(cache_dir: Path, key: str, meta: dict[str, Any], blobs: list[bytes]) -> Path:
    """Write atomically; returns the final path. OSError propagates to the caller."""
    cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    digest = hashlib.sha256()
    meta_bytes = json.dumps(meta, separators=(",", ":")).encode()
    parts = [meta_bytes, *blobs]
    for part in parts:
        digest.update(part)
    header = json.dumps(
        {"key": key, "lengths": [len(p) for p in parts], "sha256": digest.hexdigest()}
    ).encode()
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".mwsig", dir=cache_dir)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(MAGIC + _LEN.pack(len(header)) + header)
            for part in parts:
                out.write(part)
            out.flush()
            os.fsync(out.fileno())
        final = cache_path(cache_dir, key)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return final


def read_cache(cache_dir: Path, key: str) -> tuple[dict[str, Any], list[bytes]] | None:
    """The cached (meta, blobs) for ``key``, or None when absent or untrustworthy."""
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
        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as view:
            return _parse(view, key)
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


def _parse(view: mmap.mmap, key: str) -> tuple[dict[str, Any], list[bytes]] | None:
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
    if pos + sum(lengths) != len(view):
        return None
    digest = hashlib.sha256(memoryview(view)[pos:])
    if digest.hexdigest() != header.get("sha256"):
        return None
    parts: list[bytes] = []
    for n in lengths:
        parts.append(view[pos : pos + n])
        pos += n
    meta = json.loads(parts[0])
    if not isinstance(meta, dict):
        return None
    return meta, parts[1:]
