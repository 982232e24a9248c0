"""`mailwarden web` as a process: HTTPS with a configured certificate (Secure, __Host-
session cookie), /metrics standalone, a clean stop on SIGTERM, and serve's plan."""

from __future__ import annotations

import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import httpx

from intercept.harness import free_port, port_open, wait_until
from mailwarden.config import load_config
from mailwarden.serve.children import plan
from mailwarden.serve.listening import parse_endpoint
from mailwarden.serve.settings import ServeSettings
from support.tools import require
from web.conftest import PASSWORD, write_config

MW = [sys.executable, "-m", "mailwarden"]


def _start(args: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        proc = subprocess.Popen([*MW, *args], stdout=out, stderr=subprocess.STDOUT)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(log.read_text())
        return port_open(port)

    wait_until(up, 30, " ".join(args[:1]))
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> int:
    os.kill(proc.pid, signal.SIGTERM)
    return proc.wait(30)


def test_https_with_a_secure_host_only_cookie(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    require(openssl is not None, "openssl is not installed (apt-get install openssl)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [str(openssl), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    config = write_config(tmp_path, extra=f'tls_certificate = "{cert}"\ntls_key = "{key}"\n')
    port = free_port()
    proc = _start(
        ["web", "-c", str(config), "--listen", f"127.0.0.1:{port}"], port, tmp_path / "log"
    )
    try:
        trust = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=trust) as client:
            page = client.get("/login")
            assert page.status_code == 200
            token = re.search(r'name="login_token" value="([^"]+)"', page.text)
            assert token
            assert "secure" in page.headers["set-cookie"].lower()
            answer = client.post(
                "/login",
                data={"username": "admin", "password": PASSWORD, "login_token": token.group(1)},
            )
            assert answer.status_code == 303
            cookie = next(
                c
                for c in answer.headers.get_list("set-cookie")
                if c.startswith("__Host-mailwarden=")
            ).lower()
            assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
            assert client.get("/").status_code == 200
        # plain HTTP on the TLS port is not served
        try:
            plain = httpx.get(f"http://127.0.0.1:{port}/login", timeout=5)
            assert plain.status_code >= 400
        except httpx.HTTPError:
            pass
    finally:
        assert _stop(proc) == 0
    log = (tmp_path / "log").read_text()
    assert "mailwarden-web: INFO admin logged in from 127.0.0.1" in log


def test_standalone_exporter_answers_without_login(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    port = free_port()
    proc = _start(
        ["metrics", "-c", str(config), "--listen", f"127.0.0.1:{port}"], port, tmp_path / "log"
    )
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert answer.status_code == 200
        assert "mailwarden_daemon_up 0.0" in answer.text
        assert "default-src 'none'" in answer.headers["content-security-policy"]
    finally:
        assert _stop(proc) == 0


def test_serve_starts_web_and_metrics_only_when_named(tmp_path: Path) -> None:
    path = write_config(tmp_path, extra="")
    config = load_config(path)
    settings = ServeSettings.from_config(config, config_file=str(path))
    assert [s.name for s in plan(config, settings)] == ["daemon"]
    config["serve"]["agents"] = ["smtp-filter", "web", "metrics"]
    settings = ServeSettings.from_config(config, config_file=str(path))
    specs = {s.name: s for s in plan(config, settings)}
    assert specs["web"].argv[-3:] == ("web", "-c", str(path))
    assert specs["web"].listen == parse_endpoint("127.0.0.1:8025")
    assert specs["metrics"].listen == parse_endpoint("127.0.0.1:9425")
