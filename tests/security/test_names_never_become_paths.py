"""Attachment, member and envelope names never become file-system paths.

Every path that writes files while handling mail is run on messages whose
names point elsewhere (``../../``, absolute paths, NUL, bidi overrides,
full-width dots, backslashes, 300-character names): ``mailwarden scan`` with
its temporary files (RAR members are read through a temporary copy) and the
quarantine spool.  Afterwards the file system is compared with what it was:
nothing appeared outside the places the process owns, nothing there is named
after the mail, and the spool holds only id-named files 0600 in 0700 folders.
"""

from __future__ import annotations

import base64
import io
import os
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import py7zr
import pytest

from mailwarden.message import Envelope
from mailwarden.store import MalformedIdError, QuarantineId, SqliteStore, StoreError
from mailwarden.verdict import Category, Finding, Status, Verdict

sys.path.insert(0, str(Path(__file__).parents[1] / "engine" / "unpack"))
from unpack_support import rar4_stored

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
PROBE = "mw-traversal-probe"


def hostile_names(root: Path) -> list[str]:
    return [
        f"../../{PROBE}",
        f"../../../../../../{root}/{PROBE}-abs-rel",
        f"{root}/{PROBE}-absolute",
        f"..\\..\\{PROBE}-backslash",
        f"{PROBE}\x00.txt",
        f"\u202e{PROBE}-bidi",
        f"\uff0e\uff0e/\uff0e\uff0e/{PROBE}-fullwidth",
        f"{PROBE}-" + "x" * 300,
    ]


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name.replace("\x00", "_")), data)
    return buf.getvalue()


def _tar(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name.replace("\x00", "_"))
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo(f"{PROBE}-symlink")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tf.addfile(link)
    return buf.getvalue()


def _7z(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as arc:
        for i, (_name, data) in enumerate(members):
            arc.writestr(data, f"m{i}")
    return buf.getvalue()


def _message(names: list[str]) -> bytes:
    members = [(name, b"member " + name.encode("utf-8", "replace")) for name in names]
    members.append(("eicar.com", EICAR))
    archives = {
        "a.zip": _zip(members),
        "a.tar": _tar(members),
        "a.rar": rar4_stored([(n.replace("\x00", "_"), d) for n, d in members]),
        "a.7z": _7z(members),
    }
    parts = []
    for name in [*names, *archives]:
        data = archives.get(name, b"plain attachment")
        quoted = name.replace('"', "")
        parts.append(
            b'Content-Type: application/octet-stream; name="'
            + quoted.encode("utf-8", "surrogatepass")
            + b'"\r\nContent-Disposition: attachment; filename="'
            + quoted.encode("utf-8", "surrogatepass")
            + b'"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
            + base64.encodebytes(data).replace(b"\n", b"\r\n")
        )
    body = b"".join(b"--B\r\n" + p + b"\r\n" for p in parts) + b"--B--\r\n"
    return (
        b"From: a@example.org\r\nTo: b@example.net\r\nSubject: names\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n' + body
    )


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _no_probe_anywhere(*roots: Path) -> None:
    for root in roots:
        for path in root.rglob(f"*{PROBE}*"):
            pytest.fail(f"a name from the mail became a path: {path}")


def test_scan_creates_no_file_named_by_the_mail(tmp_path: Path) -> None:
    work = tmp_path / "a" / "b" / "work"
    temp = tmp_path / "tmp"
    work.mkdir(parents=True)
    temp.mkdir()
    mail = work / "names.eml"
    mail.write_bytes(_message(hostile_names(tmp_path)))
    before = _tree(tmp_path)
    env = {**os.environ, "TMPDIR": str(temp), "HOME": str(tmp_path / "a")}
    done = subprocess.run(
        [sys.executable, "-m", "mailwarden", "scan", "--json", "--all-match", str(mail)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # every container was opened: names did not stop the walk
    for container in ("a.zip", "a.tar", "a.rar", "a.7z"):
        assert f"/{container}/" in done.stdout, done.stdout + done.stderr
    assert _tree(tmp_path) == before
    assert list(temp.iterdir()) == []
    _no_probe_anywhere(tmp_path)


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "db" / "store.sqlite", tmp_path / "spool")


def test_quarantine_names_files_by_id_only_with_private_modes(
    store: SqliteStore, tmp_path: Path
) -> None:
    names = hostile_names(tmp_path)
    verdict = Verdict(
        Status.INFECTED,
        findings=tuple(
            Finding("Eicar-Test-Signature", f"2/{name}", "clamav", Category.INFECTED)
            for name in names
        ),
    )
    envelope = Envelope(sender=f"../../{PROBE}@example.org", recipients=tuple(names))
    raw = _message(names)
    qids = [store.put(raw, envelope, verdict, "infected") for _ in range(3)]
    _no_probe_anywhere(tmp_path)
    spool = tmp_path / "spool"
    assert stat.S_IMODE(spool.stat().st_mode) == 0o700
    files = [p for p in spool.rglob("*") if p.is_file()]
    assert sorted(p.name for p in files) == sorted(f"{q}.eml" for q in qids)
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert path.parent.name == path.name[:2]
    assert store.read(qids[0]) == raw


@pytest.mark.parametrize(
    "qid", ["../../etc/passwd", "/etc/passwd", "ab/../../x", "a" * 31 + "\x00", "g" * 32, ""]
)
def test_an_id_from_a_request_cannot_name_a_path(store: SqliteStore, qid: str) -> None:
    with pytest.raises(MalformedIdError):
        store.read(QuarantineId(qid))


def test_a_spool_folder_others_can_open_or_a_link_is_refused(tmp_path: Path) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o755)
    open_dir.chmod(0o755)
    with pytest.raises(StoreError):
        SqliteStore(tmp_path / "db1" / "s.sqlite", open_dir)
    target = tmp_path / "target"
    target.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(StoreError):
        SqliteStore(tmp_path / "db2" / "s.sqlite", link)
