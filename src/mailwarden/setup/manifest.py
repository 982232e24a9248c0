"""The setup manifest: what one MTA integration changed, and the backups to undo it.

One manifest per MTA lives in ``STATE/<mta>/manifest.json`` (see
:func:`state_dir`), with the backups beside it::

    STATE/postfix/manifest.json
    STATE/postfix/backup-20261127T223000Z/<absolute path of each file>
    STATE/postfix/after/<absolute path of each file>     # the text setup left

It is written *before* anything changes, with ``state = "applying"``, and
marked ``complete`` at the end; a manifest still ``applying`` on the next run
means that run was interrupted, and :func:`mailwarden.setup.apply.recover`
puts the recorded files back.  Each file records whether it existed, its
owner and mode, and the sha256 of its bytes before and after setup, so
``--uninstall`` can tell an untouched file (restored) from one an
administrator edited since (shown, and kept unless they agree).

SECURITY: the state folder is created 0700 and owned by whoever runs setup
(root on a real system): backups can hold anything the MTA's configuration
holds.  Files are replaced by write-to-temporary-and-rename in their own
folder, with the recorded owner and mode, so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mailwarden.setup.plan import SetupContext, SetupError

#: the default state folder; ``--state-dir`` or ``--mta-config-dir`` move it
DEFAULT_STATE_DIR = Path("/var/lib/mailwarden/setup")
MANIFEST_NAME = "manifest.json"
FORMAT = 1


def state_dir(ctx: SetupContext) -> Path:
    """Where manifests and backups live for ``ctx``.

    ``--state-dir`` wins; with ``--mta-config-dir DIR`` (a second instance, or a
    copy in tests) they go beside it in ``DIR.mailwarden-setup``, so two
    configurations never share a manifest; otherwise /var/lib/mailwarden/setup.
    """
    if ctx.state_dir is not None:
        return ctx.state_dir
    if ctx.mta_config_dir is not None:
        cfg = ctx.mta_config_dir.absolute()
        return cfg.parent / f"{cfg.name}.mailwarden-setup"
    return DEFAULT_STATE_DIR


def sha256_of(path: Path) -> str | None:
    """The file's sha256, None when it does not exist; SetupError when unreadable."""
    data = read_bytes(path)
    return None if data is None else hashlib.sha256(data).hexdigest()


def read_bytes(path: Path) -> bytes | None:
    """The file's bytes, None when it does not exist; SetupError when unreadable."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SetupError(f"{path}: cannot read: {exc.strerror or exc}") from exc


@dataclass(slots=True)
class FileRecord:
    """One file setup changed (or created)."""

    path: str
    existed: bool
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    #: the copy taken before setup changed the file (None: it did not exist)
    backup: str | None = None
    sha256_before: str | None = None
    #: None until the run completes (or when setup removed the file)
    sha256_after: str | None = None
    #: a copy of what setup left, to show an administrator's later edits as a diff
    after_copy: str | None = None
    #: folders setup created for this file, outermost first (removed again if empty)
    created_dirs: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Manifest:
    """What one ``setup --mta M --mode X`` changed; see the module docstring."""

    mta: str
    mode: str
    state: str  # "applying" | "complete"
    started: str
    completed: str | None = None
    files: list[FileRecord] = field(default_factory=list)
    #: the plan as applied (edits without their text, commands, checks, reloads)
    plan: dict[str, Any] = field(default_factory=dict)
    #: ``systemctl is-enabled mailwarden`` before setup enabled it (None: not asked)
    service_enabled_before: bool | None = None
    #: the complete manifest this run extends (an earlier run of the same mode)
    previous: dict[str, Any] | None = None
    format: int = FORMAT

    def record(self, path: Path) -> FileRecord | None:
        for rec in self.files:
            if rec.path == str(path):
                return rec
        return None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        files = [FileRecord(**rec) for rec in data.get("files", [])]
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "files"}
        return cls(files=files, **known)


@contextlib.contextmanager
def locked(ctx: SetupContext, mta: str) -> Iterator[None]:
    """Hold ``STATE/<mta>/lock`` for one run: a second setup of the same MTA at the
    same time stops at once instead of taking the first one's "applying" manifest
    for an interrupted run.  The kernel drops the lock when a run dies."""
    folder = state_dir(ctx) / mta
    ensure_private_dir(folder)
    fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise SetupError(
                f"{mta}: another mailwarden setup is running for it now; nothing was changed"
            ) from exc
        yield
    finally:
        os.close(fd)


def manifest_path(ctx: SetupContext, mta: str) -> Path:
    return state_dir(ctx) / mta / MANIFEST_NAME


def load_manifest(ctx: SetupContext, mta: str) -> Manifest | None:
    """The MTA's manifest, None when setup never ran (or was uninstalled)."""
    path = manifest_path(ctx, mta)
    data = read_bytes(path)
    if data is None:
        return None
    try:
        return Manifest.from_dict(json.loads(data))
    except (ValueError, TypeError) as exc:
        raise SetupError(
            f"{path}: the setup manifest is damaged ({exc}); the backups beside it "
            "are intact: restore the files by hand, then remove the manifest"
        ) from exc


def save_manifest(ctx: SetupContext, manifest: Manifest) -> Path:
    """Write the manifest atomically (and durably: it is the undo log)."""
    path = manifest_path(ctx, manifest.mta)
    ensure_private_dir(path.parent)
    write_atomic(path, manifest.to_json().encode(), mode=0o600)
    return path


def remove_manifest(ctx: SetupContext, mta: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        manifest_path(ctx, mta).unlink()


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and its parents) with mode 0700 for the last levels."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(mode=0o700)


def write_atomic(
    path: Path,
    data: bytes,
    *,
    mode: int,
    uid: int | None = None,
    gid: int | None = None,
) -> None:
    """Replace ``path`` with ``data`` by a synced temporary file renamed over it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            # owner first: changing the owner clears setuid bits set before it
            if uid is not None and gid is not None and os.geteuid() == 0:
                os.fchown(fh.fileno(), uid, gid)
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def copy_into(store: Path, path: Path, data: bytes) -> Path:
    """Keep ``data`` (a copy of ``path``) under ``store`` by its absolute path."""
    target = store / path.absolute().relative_to("/")
    ensure_private_dir(target.parent)
    write_atomic(target, data, mode=0o600)
    return target


def backup(store: Path, path: Path, created_dirs: list[Path]) -> FileRecord:
    """Record ``path`` as it is now, copying it into ``store`` when it exists."""
    data = read_bytes(path)
    if data is None:
        return FileRecord(
            path=str(path),
            existed=False,
            created_dirs=[str(d) for d in created_dirs],
        )
    st = path.stat()
    copy = copy_into(store, path, data)
    # the copy keeps the original's permission bits; the 0700 state folder guards it
    os.chmod(copy, st.st_mode & 0o7777)
    return FileRecord(
        path=str(path),
        existed=True,
        mode=st.st_mode & 0o7777,
        uid=st.st_uid,
        gid=st.st_gid,
        backup=str(copy),
        sha256_before=hashlib.sha256(data).hexdigest(),
    )


def restore(rec: FileRecord) -> None:
    """Put the file back as it was before setup (remove it if setup created it)."""
    path = Path(rec.path)
    if not rec.existed:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        for d in reversed(rec.created_dirs):
            with contextlib.suppress(OSError):
                Path(d).rmdir()
        return
    if rec.backup is None:
        raise SetupError(f"{path}: the manifest has no backup for this file")
    data = read_bytes(Path(rec.backup))
    if data is None:
        raise SetupError(f"{path}: its backup {rec.backup} is missing; restore it by hand")
    if hashlib.sha256(data).hexdigest() != rec.sha256_before:
        raise SetupError(f"{path}: its backup {rec.backup} does not match the manifest")
    mode = 0o644 if rec.mode is None else rec.mode
    write_atomic(path, data, mode=mode, uid=rec.uid, gid=rec.gid)
