"""Fetch a signature set from a mirror folder or an HTTP(S) URL, verifying as it goes.

Usage::

    manifest = fetch(source, staging, key=key, settings=settings, in_use=(manifest, folder))

``source`` is a folder holding ``MANIFEST`` and the files it lists, or an
``http://``/``https://`` base URL under which ``MANIFEST`` and each file are
found (another node's ``update --serve-mirror``, or any web server).  Each
file is streamed into ``staging`` while its SHA-256 is computed; a file that
is larger than the manifest says, shorter, or hashes differently is refused.
With ``in_use`` (the manifest and folder of the set in use), a manifest
listing the same files fetches nothing, and a file the set in use already
holds with the same digest is copied from it (and verified) instead of
fetched: a timer that asks every half hour costs one small request.

SECURITY: TLS certificates are verified (the system's CAs or ``ca_file``);
a redirect from https to http is refused.  Names come from the verified
manifest and are plain file names (``manifest.valid_name``), written with
O_EXCL into the fresh staging folder only.  Sizes are bounded by the
manifest and ``max_file_size``, times by ``timeout``.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from mailwarden.errors import MailwardenError
from mailwarden.update.manifest import MANIFEST_NAME, MAX_MANIFEST, Entry, Manifest, parse
from mailwarden.update.settings import UpdateSettings

_CHUNK = 1024 * 1024


class FetchError(MailwardenError):
    """The source cannot be read, or a file does not match the manifest."""


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def fetch(
    source: str,
    staging: Path,
    *,
    key: bytes | None,
    settings: UpdateSettings,
    in_use: tuple[Manifest, Path] | None = None,
) -> tuple[Manifest, bytes]:
    """Read the manifest, then every file into ``staging``; returns the verified manifest
    and its text.  Nothing is fetched when it lists the files of ``in_use``."""
    with _open(source, MANIFEST_NAME, settings) as stream:
        data = stream.read(MAX_MANIFEST + 1)
    manifest = parse(data, key=key, origin=_where(source, MANIFEST_NAME))
    if in_use is not None and in_use[0].same_files(manifest):
        return manifest, data
    for entry in manifest.files:
        if entry.size > settings.max_file_size:
            raise FetchError(
                f"{entry.name}: {entry.size} bytes is over [update] max_file_size "
                f"({settings.max_file_size})"
            )
        held = in_use[1] if in_use is not None and in_use[0].entry(entry.name) == entry else None
        if held is not None and _copy_local(held, staging, entry):
            continue
        with _open(source, entry.name, settings) as stream:
            copy_verified(stream, staging / entry.name, entry, _where(source, entry.name))
    return manifest, data


def copy_verified(stream: IO[bytes], target: Path, entry: Entry, origin: str) -> None:
    """Write ``stream`` to a new file ``target``; refuse it unless it matches ``entry``."""
    digest = hashlib.sha256()
    size = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "wb") as out:
        while True:
            chunk = stream.read(min(_CHUNK, entry.size - size + 1))
            if not chunk:
                break
            size += len(chunk)
            if size > entry.size:
                raise FetchError(f"{origin}: longer than the {entry.size} bytes the manifest lists")
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if size != entry.size:
        raise FetchError(f"{origin}: {size} bytes, the manifest lists {entry.size} (truncated?)")
    if digest.hexdigest() != entry.sha256:
        raise FetchError(f"{origin}: SHA-256 does not match the manifest (corrupt or tampered)")


def _copy_local(folder: Path, staging: Path, entry: Entry) -> bool:
    """Copy an unchanged file of the set in use; False (and nothing left) if it fails."""
    target = staging / entry.name
    try:
        with open(folder / entry.name, "rb") as stream:
            copy_verified(stream, target, entry, str(folder / entry.name))
    except (OSError, FetchError):
        target.unlink(missing_ok=True)
        return False
    return True


def _where(source: str, name: str) -> str:
    if is_url(source):
        return source.rstrip("/") + "/" + urllib.parse.quote(name)
    return str(Path(source) / name)


@contextmanager
def _open(source: str, name: str, settings: UpdateSettings) -> Iterator[IO[bytes]]:
    where = _where(source, name)
    if not is_url(source):
        try:
            fh = open(Path(source) / name, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise FetchError(f"{where}: missing from the mirror folder") from None
        except OSError as exc:
            raise FetchError(f"{where}: {exc.strerror}") from exc
        with fh:
            yield fh
        return
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=_tls_context(settings)), _NoDowngrade()
    )
    try:
        response = opener.open(where, timeout=settings.timeout)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{where}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"{where}: cannot reach the mirror: {reason}") from None
    with response:
        try:
            yield response
        except (OSError, TimeoutError) as exc:
            raise FetchError(f"{where}: transfer failed: {exc}") from exc


def _tls_context(settings: UpdateSettings) -> ssl.SSLContext:
    cafile = str(settings.ca_file) if settings.ca_file else None
    return ssl.create_default_context(cafile=cafile)


class _NoDowngrade(urllib.request.HTTPRedirectHandler):
    def redirect_request(  # type: ignore[no-untyped-def]
        self, req, fp, code, msg, headers, newurl
    ):
        if req.full_url.startswith("https:") and not newurl.startswith("https:"):
            raise urllib.error.URLError(f"refused redirect from https to {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)
