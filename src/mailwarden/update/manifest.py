"""The manifest of a signature set: every file with its size and SHA-256.

Format (UTF-8 text, one record per line, ``\\n`` line ends)::

    mailwarden-manifest 1
    created 1764283200
    file 5f0c...(64 hex digits) 162631546 main.cvd
    file 9a1b...(64 hex digits) 61203322 daily.cld
    hmac-sha256 3c4d...64 hex digits...

``created`` is when the set was published (Unix seconds); newer sets have
larger values, and ``update`` refuses to go back in time unless forced.
``file`` names are plain file names (letters, digits, ``.``, ``_``, ``-``;
no folders), each listed once.  ``hmac-sha256``, optional and last, is the
HMAC-SHA256 under the shared ``[update] key_file`` of every byte before
that line.  ``sha256sum`` users can check a set with
``awk '$1=="file"{print $2"  "$4}' MANIFEST | sha256sum -c``.

What it protects against: a corrupt, truncated, missing or substituted
file, or half a set, by the per-file digests; with a key, anyone who can
change the mirror's files or the traffic but does not hold the key (a
compromised web server, a proxy, plain HTTP).  What it does not: a holder
of the key (every node has it: it is a shared secret, not a public-key
signature), and, without a key, anyone who can change the manifest too,
for whom only an https source with a verified certificate stands guard.

SECURITY: the manifest is untrusted input until verified: bounded in size
and lines, parsed strictly; names that could be paths are refused, so a
name never leaves the set's folder.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from mailwarden.errors import MailwardenError

MANIFEST_NAME = "MANIFEST"
MAGIC = "mailwarden-manifest 1"
#: a manifest larger than this is refused before it is parsed
MAX_MANIFEST = 1024 * 1024
MAX_FILES = 10_000

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")


class ManifestError(MailwardenError):
    """A manifest that does not parse, or whose signature does not verify."""


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Manifest:
    created: int
    files: tuple[Entry, ...]
    signed: bool = False

    def entry(self, name: str) -> Entry | None:
        for e in self.files:
            if e.name == name:
                return e
        return None

    def same_files(self, other: Manifest) -> bool:
        """Whether both list the same names with the same contents."""
        return {(e.name, e.sha256) for e in self.files} == {(e.name, e.sha256) for e in other.files}

    @property
    def digest(self) -> str:
        """A digest of the listed contents, which names a set."""
        text = "".join(f"{e.sha256} {e.name}\n" for e in sorted(self.files, key=lambda e: e.name))
        return hashlib.sha256(text.encode()).hexdigest()


def valid_name(name: str) -> bool:
    return bool(_NAME.match(name)) and name != MANIFEST_NAME and ".." not in name


def render(manifest: Manifest, key: bytes | None = None) -> bytes:
    """The manifest's text, signed when ``key`` is given."""
    lines = [MAGIC, f"created {manifest.created}"]
    for e in sorted(manifest.files, key=lambda e: e.name):
        lines.append(f"file {e.sha256} {e.size} {e.name}")
    body = ("\n".join(lines) + "\n").encode("ascii")
    if key is not None:
        body += f"hmac-sha256 {_mac(key, body)}\n".encode("ascii")
    return body


def parse(data: bytes, *, key: bytes | None = None, origin: str = "manifest") -> Manifest:
    """Parse and verify; raises :class:`ManifestError` naming ``origin`` and the line."""
    if len(data) > MAX_MANIFEST:
        raise ManifestError(f"{origin}: larger than {MAX_MANIFEST} bytes")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise ManifestError(f"{origin}: not ASCII text") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    else:
        raise ManifestError(f"{origin}: does not end with a newline (truncated?)")
    if not lines or lines[0] != MAGIC:
        raise ManifestError(f"{origin}: line 1: expected {MAGIC!r}")
    created: int | None = None
    files: dict[str, Entry] = {}
    mac: str | None = None
    signed_length = len(data)
    offset = 0
    for number, line in enumerate(lines, 1):
        start = offset
        offset += len(line) + 1
        if number == 1:
            continue
        where = f"{origin}: line {number}"
        if mac is not None:
            raise ManifestError(f"{where}: nothing may follow hmac-sha256")
        word, _, rest = line.partition(" ")
        if word == "created":
            if created is not None or not rest.isdigit() or len(rest) > 12:
                raise ManifestError(f"{where}: expected one 'created <unix seconds>'")
            created = int(rest)
        elif word == "file":
            parts = rest.split(" ")
            if len(parts) != 3 or not _HEX.match(parts[0]) or not parts[1].isdigit():
                raise ManifestError(f"{where}: expected 'file <sha256> <size> <name>'")
            digest, size, name = parts
            if not valid_name(name):
                raise ManifestError(f"{where}: not a plain file name: {name!r}")
            if name in files:
                raise ManifestError(f"{where}: {name} is listed twice")
            if len(files) >= MAX_FILES:
                raise ManifestError(f"{where}: more than {MAX_FILES} files")
            files[name] = Entry(name, int(size), digest)
        elif word == "hmac-sha256":
            if not _HEX.match(rest):
                raise ManifestError(f"{where}: expected 'hmac-sha256 <64 hex digits>'")
            mac = rest
            signed_length = start
        else:
            raise ManifestError(f"{where}: unknown record {word!r}")
    if created is None:
        raise ManifestError(f"{origin}: no 'created' line")
    if not files:
        raise ManifestError(f"{origin}: lists no files")
    if key is not None:
        if mac is None:
            raise ManifestError(f"{origin}: not signed, and [update] key_file requires a signature")
        if not hmac.compare_digest(mac, _mac(key, data[:signed_length])):
            raise ManifestError(
                f"{origin}: the signature does not verify (tampered, or another key)"
            )
    return Manifest(created, tuple(files.values()), signed=mac is not None and key is not None)


def _mac(key: bytes, body: bytes) -> str:
    return hmac.new(key, b"mailwarden-manifest\0" + body, hashlib.sha256).hexdigest()
