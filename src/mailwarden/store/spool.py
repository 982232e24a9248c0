"""The quarantine spool: one file per quarantined message, named by its id.

Used by the SQLite backend (and later the PostgreSQL one, on each node)::

    spool = Spool(Path(config["store"]["spool_dir"]))
    spool.write(qid, raw); spool.read(qid); spool.delete(qid)

Layout: ``DIR/ab/abcdef....eml``, two hex digits of fan-out so no folder
grows past a few thousand files.

SECURITY: the folder and its fan-out folders are 0700 and files 0600,
created with those modes (never widened by the umask); an existing folder
that group or others can enter, or that is a symbolic link, is refused
rather than used.  Names come only from :func:`store.base.parse_id` ids; files
are opened with O_NOFOLLOW and written to a temporary name then renamed, so a
reader never sees half a message.  Needs write access to the folder only.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from mailwarden.store.base import QuarantineId, StoreError, UnknownIdError, parse_id

_DIR_MODE = 0o700
_FILE_MODE = 0o600


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = root
        secure_dir(root)

    def path(self, qid: QuarantineId) -> Path:
        qid = parse_id(qid)
        return self.root / qid[:2] / f"{qid}.eml"

    def write(self, qid: QuarantineId, raw: bytes) -> Path:
        final = self.path(qid)
        secure_dir(final.parent)
        temp = final.with_suffix(".tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(temp, flags, _FILE_MODE)
        except OSError as exc:
            raise StoreError(f"cannot create quarantine file {temp}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(raw)
                out.flush()
                os.fsync(out.fileno())
            os.rename(temp, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise StoreError(f"cannot write quarantine file {final}: {exc}") from exc
        return final

    def read(self, qid: QuarantineId) -> bytes:
        path = self.path(qid)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise UnknownIdError(f"quarantine file missing for {qid}") from exc
        except OSError as exc:
            raise StoreError(f"cannot read quarantine file {path}: {exc}") from exc
        with os.fdopen(fd, "rb") as src:
            return src.read()

    def delete(self, qid: QuarantineId) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(qid))


def secure_dir(path: Path) -> None:
    """Create ``path`` 0700 if missing; refuse a link or one open to group or others."""
    try:
        os.mkdir(path, _DIR_MODE)
    except FileExistsError:
        pass
    except FileNotFoundError:
        path.parent.mkdir(parents=True, mode=_DIR_MODE, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, _DIR_MODE)
    except OSError as exc:
        raise StoreError(f"cannot create {path}: {exc}") from exc
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise StoreError(f"{path} is not a plain folder (a link or a file); refusing it")
    if info.st_mode & 0o077:
        raise StoreError(
            f"{path} is open to group or others (mode {stat.S_IMODE(info.st_mode):o}); "
            f"run: chmod 700 {path}"
        )
    if info.st_uid != os.geteuid() and os.geteuid() != 0:
        raise StoreError(f"{path} belongs to uid {info.st_uid}, not to this user")
