"""``update --serve-mirror``: serve the installed set to other nodes over HTTP.

Usage::

    server = make_server(SetStore(live), "127.0.0.1:8026")
    server.serve_forever()

``GET /MANIFEST`` returns the manifest of the set in use (as it was
installed, signature included); ``GET /<name>`` returns a file the manifest
lists; anything else is 404, and 503 while no set is installed.  A
request is answered from the set that was current when it arrived, by
name, so a switch in the middle of a transfer does not mix sets (the
previous set is kept by ``[update] keep``).

SECURITY: read-only; listens on loopback unless told otherwise.  Request
paths are never joined to the file system: they are looked up in the
manifest, whose names are plain file names.  Plain HTTP: use a ``key_file``
so that other nodes can verify what they fetch, or put a TLS proxy in front.
"""

from __future__ import annotations

import logging
import shutil
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from mailwarden.update.install import SetStore
from mailwarden.update.manifest import MANIFEST_NAME

log = logging.getLogger("mailwarden.update.mirror")


class MirrorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], sets: SetStore) -> None:
        self.sets = sets
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: MirrorServer
    server_version = "mailwarden-mirror"
    sys_version = ""
    #: seconds a client may stay silent; an idle connection must not hold a thread forever
    timeout = 60

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, *, body: bool) -> None:
        path = urllib.parse.urlsplit(self.path).path
        name = urllib.parse.unquote(path.lstrip("/"))
        sets = self.server.sets
        current = sets.current()
        found = sets.manifest_of(current) if current else None
        if current is None or found is None:
            self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, "no signature set installed")
            return
        manifest, text = found
        if name == MANIFEST_NAME:
            self._send_headers(len(text))
            if body:
                self.wfile.write(text)
            return
        entry = manifest.entry(name)
        if entry is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        try:
            fh = open(sets.folder(current) / entry.name, "rb")  # noqa: SIM115 - closed below
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        with fh:
            self._send_headers(entry.size)
            if body:
                shutil.copyfileobj(fh, self.wfile, 1 << 20)

    def _send_headers(self, length: int) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        log.info("%s %s", self.address_string(), format % args)


def make_server(sets: SetStore, listen: str) -> MirrorServer:
    host, _, port = listen.rpartition(":")
    return MirrorServer((host.strip("[]"), int(port)), sets)
