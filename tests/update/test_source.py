"""Fetching over HTTP and HTTPS: a web server in the test serves a mirror folder."""

from __future__ import annotations

import functools
import http.server
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mailwarden.update import FetchError, SetStore, update_from
from support.dovecot import make_certs
from update.helpers import config, mirror, settings


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def web_server(folder: Path, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    with serving(functools.partial(_Quiet, directory=str(folder)), tls) as url:
        yield url


@contextmanager
def serving(handler: Any, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if tls else "http"
    try:
        yield f"{scheme}://localhost:{server.server_address[1]}/sigs"
    finally:
        server.shutdown()
        server.server_close()


def test_install_over_http(tmp_path: Path) -> None:
    mirror(tmp_path / "www" / "sigs", "one")
    cfg = config(tmp_path)
    with web_server(tmp_path / "www") as url:
        result = update_from(cfg, settings(cfg), url)
    assert result.state == "installed"
    assert SetStore(tmp_path / "db" / "signatures").current() == result.name


def test_http_404_for_a_listed_file_is_refused(tmp_path: Path) -> None:
    src = mirror(tmp_path / "www" / "sigs", "one")
    (src / "extra.ndb").unlink()
    cfg = config(tmp_path)
    with web_server(tmp_path / "www") as url, pytest.raises(FetchError, match="HTTP 404"):
        update_from(cfg, settings(cfg), url)
    assert SetStore(tmp_path / "db" / "signatures").current() is None


def test_an_unreachable_mirror_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cfg = config(tmp_path)
    with pytest.raises(FetchError, match="cannot reach the mirror"):
        update_from(cfg, settings(cfg), f"http://127.0.0.1:{port}/sigs")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    certs = make_certs(tmp_path_factory.mktemp("certs"))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs.cert, certs.key)
    return ctx, certs.ca


def test_https_with_the_mirror_ca(tmp_path: Path, tls: tuple[ssl.SSLContext, Path]) -> None:
    ctx, ca = tls
    mirror(tmp_path / "www" / "sigs", "one")
    cfg = config(tmp_path, f'ca_file = "{ca}"')
    with web_server(tmp_path / "www", ctx) as url:
        assert update_from(cfg, settings(cfg), url).state == "installed"


def test_https_certificates_are_verified(tmp_path: Path, tls: tuple[ssl.SSLContext, Path]) -> None:
    ctx, _ = tls
    mirror(tmp_path / "www" / "sigs", "one")
    cfg = config(tmp_path)  # the system's CAs do not know the test CA
    with web_server(tmp_path / "www", ctx) as url, pytest.raises(FetchError, match="CERTIFICATE"):
        update_from(cfg, settings(cfg), url)
    assert SetStore(tmp_path / "db" / "signatures").current() is None


class _Redirect(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", "http://127.0.0.1:9/sigs" + self.path)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_redirect_from_https_to_http_is_refused(
    tmp_path: Path, tls: tuple[ssl.SSLContext, Path]
) -> None:
    ctx, ca = tls
    cfg = config(tmp_path, f'ca_file = "{ca}"')
    with (
        serving(_Redirect, ctx) as url,
        pytest.raises(FetchError, match="refused redirect from https"),
    ):
        update_from(cfg, settings(cfg), url)
