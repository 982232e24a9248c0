"""Debian's Chromium, driven by Playwright, against `mailwarden web` over a real gateway:
log in, see the chart drawn from messages the SMTP filter really scanned, release a
quarantined message and see it delivered, and be refused without a login."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from intercept.harness import free_port, wait_until
from support.tools import missing
from web.conftest import PASSWORD
from web.stack import Gateway, eicar_message, gateway, message

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site() -> Iterator[tuple[Gateway, str]]:
    if shutil.which(CHROMIUM) is None:
        missing("Debian's chromium is not installed (apt-get install chromium)")
    root = Path(tempfile.mkdtemp(prefix="mw-web-"))
    with gateway(root) as gw:
        gw.send(message("first clean", "hello"))
        gw.send(message("second clean", "hello again"))
        gw.send(eicar_message("quarantine me"))
        port = free_port()
        gw.start_web(port)
        yield gw, f"http://127.0.0.1:{port}"


@pytest.fixture
def browser_context(tmp_path: Path) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
        )
        try:
            yield context
        finally:
            context.close()


def _login(page: object, base: str) -> None:
    page.goto(base + "/")  # type: ignore[attr-defined]
    assert "/login" in page.url  # type: ignore[attr-defined]
    page.fill("input[name=username]", "admin")  # type: ignore[attr-defined]
    page.fill("input[name=password]", PASSWORD)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(base + "/")  # type: ignore[attr-defined]


def test_refused_without_a_login(site: tuple[Gateway, str], browser_context: object) -> None:
    _, base = site
    page = browser_context.new_page()  # type: ignore[attr-defined]
    for path in ("/", "/quarantine", "/config"):
        page.goto(base + path)
        assert page.url.startswith(base + "/login"), path
        assert page.locator("h1").inner_text() == "Log in"
    answer = page.request.get(base + "/api/events")
    assert answer.status == 401
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert "Wrong user name or password." in page.locator("p.error").inner_text()


def test_log_in_and_see_the_chart_with_real_data(
    site: tuple[Gateway, str], browser_context: object
) -> None:
    _, base = site
    page = browser_context.new_page()  # type: ignore[attr-defined]
    _login(page, base)
    hourly = page.locator("figure.chart").first
    assert hourly.get_attribute("data-total") == "3"
    assert page.locator("figure.chart svg").count() == 2
    infected = hourly.locator('g[data-series="infected"]')
    assert infected.get_attribute("data-total") == "1"
    # the browser drew it: the scanned line has a visible extent
    box = hourly.locator('g[data-series="scanned"] polyline').bounding_box()
    assert box is not None and box["width"] > 100
    assert page.locator("text=S1").first.is_visible()


def test_release_a_quarantined_message_and_see_it_delivered(
    site: tuple[Gateway, str], browser_context: object
) -> None:
    gw, base = site
    page = browser_context.new_page()  # type: ignore[attr-defined]
    _login(page, base)
    page.click("nav >> text=Quarantine")
    page.fill("input[name=finding]", "eicar")
    page.click("form.search button")
    rows = page.locator("table.quarantine tbody tr")
    assert rows.count() == 1
    assert "quarantine me" in rows.first.inner_text()
    rows.first.locator("a").click()
    assert "Eicar" in page.locator("table.findings").inner_text()
    before = len(gw.sink.messages)
    page.click("form.release button")
    assert "Released to bob@example.org." in page.locator("p.notice").inner_text()
    wait_until(lambda: len(gw.sink.messages) > before, 30, "the released message")
    delivered = gw.sink.messages[-1]
    assert delivered.recipients == ["bob@example.org"]
    assert b"Subject: quarantine me" in delivered.data
    assert re.match(rb"(?i)x-mailwarden-release: v=1; id=[0-9a-f]{32}", delivered.data)
