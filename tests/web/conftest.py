"""Fixtures of the web interface's tests: a configured application over a real SQLite store.

``web`` gives a :class:`WebHarness`: the application (Starlette's TestClient,
which drives it through httpx), its configuration and store, and ``login()``.
Passwords are hashed with a small scrypt cost so the tests stay quick; the
format and the check are the same as with the default cost.

SECURITY: test-only; everything lives under pytest's tmp_path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mailwarden.config import Config, load_config
from mailwarden.store import QuarantineStore, open_store
from mailwarden.web import WebApp, WebSettings, hash_password, load_key
from support.identity import keep_test_user

PASSWORD = "correct horse battery"  # noqa: S105 - the test login
FAST_HASH = hash_password(PASSWORD, n=2**4)


def write_config(root: Path, *, extra: str = "", password_hash: str = FAST_HASH) -> Path:
    path = root / "mailwarden.toml"
    path.write_text(
        f"""\
[store]
database = "{root / "store" / "mw.sqlite3"}"
spool_dir = "{root / "store" / "quarantine"}"

[daemon]
socket = "{root / "no-daemon.sock"}"

[release]
secret_file = "{root / "release.key"}"

[metrics]
directory = "{root / "metrics"}"
daemon_timeout = 0.5

[web]
password_hash = "{password_hash}"
secret_file = "{root / "web.key"}"
login_attempts = 3
{extra}
"""
    )
    keep_test_user(path)
    return path


@dataclass
class WebHarness:
    root: Path
    config: Config
    app: WebApp
    client: TestClient

    def store(self) -> QuarantineStore:
        return open_store(self.config)

    def login(self, password: str = PASSWORD, *, user: str = "admin") -> int:
        page = self.client.get("/login")
        token = login_token(page.text)
        answer = self.client.post(
            "/login",
            data={"username": user, "password": password, "login_token": token, "next": "/"},
            follow_redirects=False,
        )
        return answer.status_code

    def csrf(self, path: str = "/") -> str:
        match = re.search(r'name="csrf" value="([^"]+)"', self.client.get(path).text)
        assert match, "no CSRF token in the page"
        return match.group(1)


def login_token(html: str) -> str:
    match = re.search(r'name="login_token" value="([^"]+)"', html)
    assert match, "no login token in the login page"
    return match.group(1)


def make_harness(root: Path, *, extra: str = "", **kwargs: object) -> WebHarness:
    config = load_config(write_config(root, extra=extra))
    settings = WebSettings.from_config(config)
    app = WebApp(config, settings, key=load_key(Path(settings.secret_file)), **kwargs)  # type: ignore[arg-type]
    return WebHarness(root, config, app, TestClient(app.asgi()))


@pytest.fixture
def web(tmp_path: Path) -> Iterator[WebHarness]:
    harness = make_harness(tmp_path)
    with harness.client:
        yield harness
