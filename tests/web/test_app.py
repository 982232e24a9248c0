"""The web application through HTTP (Starlette's TestClient over httpx) on a real SQLite store:
login, sessions, CSRF, every page, masking, and bad input."""

from __future__ import annotations

import base64
import logging
import re
import time
from pathlib import Path

import pytest

from mailwarden.message import Direction, Point
from mailwarden.store import StoreError
from support.smtp_sink import smtp_sink
from web.conftest import PASSWORD, WebHarness, login_token, make_harness
from web.seed import history, quarantine

PAGES = ["/", "/quarantine", "/events", "/status", "/config"]
APIS = ["/api/events", "/api/quarantine", "/api/status"]


# --- refused without a login -----------------------------------------------------------


@pytest.mark.parametrize("path", [*PAGES, "/quarantine/" + "a" * 32])
def test_pages_redirect_to_the_login_without_a_session(web: WebHarness, path: str) -> None:
    answer = web.client.get(path, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize("path", APIS)
def test_api_answers_401_without_a_session(web: WebHarness, path: str) -> None:
    answer = web.client.get(path)
    assert answer.status_code == 401
    assert answer.json() == {"error": "login required"}


def test_state_changes_need_a_session(web: WebHarness) -> None:
    qid = quarantine(web.store())
    for action in ("release", "delete"):
        answer = web.client.post(f"/quarantine/{qid}/{action}", follow_redirects=False)
        assert answer.status_code == 303 and "/login" in answer.headers["location"]
    assert web.store().get(qid).id == qid


def test_metrics_needs_a_login_or_basic_auth(web: WebHarness) -> None:
    answer = web.client.get("/metrics")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Basic")
    bad = base64.b64encode(b"admin:wrong").decode()
    assert web.client.get("/metrics", headers={"Authorization": f"Basic {bad}"}).status_code == 401
    good = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    answer = web.client.get("/metrics", headers={"Authorization": f"Basic {good}"})
    assert answer.status_code == 200
    assert "mailwarden_daemon_up 0.0" in answer.text  # no daemon in these tests


# --- login, sessions, logout -------------------------------------------------------------


def test_login_then_every_page_and_api(web: WebHarness) -> None:
    assert web.login() == 303
    for path in PAGES:
        answer = web.client.get(path)
        assert answer.status_code == 200, path
        assert "Log out" in answer.text
    for path in APIS:
        assert web.client.get(path).status_code == 200, path
    assert web.client.get("/metrics").status_code == 200


def test_session_cookie_is_httponly_and_strict(web: WebHarness) -> None:
    page = web.client.get("/login")
    answer = web.client.post(
        "/login",
        data={"username": "admin", "password": PASSWORD, "login_token": login_token(page.text)},
        follow_redirects=False,
    )
    cookie = answer.headers["set-cookie"].lower()
    assert "mailwarden_session=" in cookie
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert "secure" not in cookie.split("mailwarden_session=")[1].split(",")[0]


def test_wrong_password_and_wrong_user_are_refused(web: WebHarness) -> None:
    assert web.login("not the password") == 401
    assert web.login(user="root") == 401
    assert web.client.get("/", follow_redirects=False).status_code == 303


def test_login_without_its_form_token_is_refused(web: WebHarness) -> None:
    web.client.get("/login")
    answer = web.client.post(
        "/login",
        data={"username": "admin", "password": PASSWORD, "login_token": "forged"},
        follow_redirects=False,
    )
    assert answer.status_code == 403


def test_failed_logins_are_rate_limited(web: WebHarness) -> None:
    for _ in range(3):  # login_attempts = 3
        assert web.login("wrong password") == 401
    page = web.client.get("/login")
    answer = web.client.post(
        "/login",
        data={"username": "admin", "password": PASSWORD, "login_token": login_token(page.text)},
        follow_redirects=False,
    )
    assert answer.status_code == 429
    assert int(answer.headers["retry-after"]) > 0
    assert web.client.get("/", follow_redirects=False).status_code == 303


def test_logout_ends_the_session_even_with_the_old_cookie(web: WebHarness) -> None:
    web.login()
    cookie = web.client.cookies.get("mailwarden_session")
    answer = web.client.post("/logout", data={"csrf": web.csrf()}, follow_redirects=False)
    assert answer.status_code == 303
    web.client.cookies.set("mailwarden_session", cookie)
    assert web.client.get("/", follow_redirects=False).status_code == 303


def test_a_tampered_cookie_is_no_session(web: WebHarness) -> None:
    web.login()
    cookie = web.client.cookies.get("mailwarden_session")
    assert cookie
    payload, mac = cookie.split(".")
    web.client.cookies.set("mailwarden_session", payload + "x." + mac)
    assert web.client.get("/", follow_redirects=False).status_code == 303


def test_login_goes_back_to_a_local_page_only(web: WebHarness) -> None:
    page = web.client.get("/login?next=/events")
    for target, expected in (("/events", "/events"), ("//evil.example/", "/"), ("http://x/", "/")):
        web.client.cookies.clear()
        page = web.client.get("/login")
        answer = web.client.post(
            "/login",
            data={
                "username": "admin",
                "password": PASSWORD,
                "login_token": login_token(page.text),
                "next": target,
            },
            follow_redirects=False,
        )
        assert answer.headers["location"] == expected


# --- CSRF --------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["release", "delete"])
@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_state_changes_without_the_csrf_token_get_403(
    web: WebHarness, action: str, token: str | None
) -> None:
    qid = quarantine(web.store())
    web.login()
    data = {} if token is None else {"csrf": token}
    answer = web.client.post(f"/quarantine/{qid}/{action}", data=data, follow_redirects=False)
    assert answer.status_code == 403
    assert web.store().get(qid).released is None


def test_logout_without_the_csrf_token_gets_403(web: WebHarness) -> None:
    web.login()
    assert web.client.post("/logout", follow_redirects=False).status_code == 403
    assert web.client.get("/", follow_redirects=False).status_code == 200


def test_get_cannot_change_anything(web: WebHarness) -> None:
    qid = quarantine(web.store())
    web.login()
    assert web.client.get(f"/quarantine/{qid}/delete").status_code == 405
    assert web.store().get(qid).id == qid


# --- headers and escaping ---------------------------------------------------------------------


def test_every_answer_carries_a_script_free_csp(web: WebHarness) -> None:
    for answer in (web.client.get("/login"), web.client.get("/static/style.css")):
        csp = answer.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"


def test_preview_shows_the_message_as_escaped_text_and_parts_as_a_tree(web: WebHarness) -> None:
    qid = quarantine(web.store())
    web.login()
    page = web.client.get(f"/quarantine/{qid}").text
    assert "<script>" not in page
    assert "&lt;script&gt;document.title" in page  # the HTML part, as text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # a header, as text
    assert '<img src="http://evil.example' not in page
    assert "Invoice &lt;b&gt;due&lt;/b&gt;" in page  # encoded-word decoded, then escaped
    assert "Win.Test.EICAR_HDB-1" in page and "2/passwd.zip" in page
    assert "../../etc/passwd.zip" in page  # shown as a name, never used as a path
    assert re.search(r'class="depth-1">\s*<span class="part-path">2</span>', page)
    assert "HTML source, shown as text" in page


def test_download_gives_the_bytes_as_an_attachment(web: WebHarness) -> None:
    store = web.store()
    qid = quarantine(store)
    web.login()
    answer = web.client.get(f"/quarantine/{qid}/raw")
    assert answer.content == store.read(qid)
    assert answer.headers["content-disposition"] == f'attachment; filename="{qid}.eml"'


# --- pages with data ---------------------------------------------------------------------------


def test_dashboard_counts_history_per_hour_point_and_direction(web: WebHarness) -> None:
    now = time.time()
    history(
        web.store(),
        now,
        [
            (10, "clean", Point.MTA, Direction.INBOUND),
            (20, "infected", Point.MTA, Direction.INBOUND),
            (7200, "suspicious", Point.MDA, Direction.INBOUND),
            (3 * 86400, "unscanned", Point.DOWNLOAD, Direction.OUTBOUND),
        ],
    )
    web.login()
    page = web.client.get("/").text
    hourly, daily = re.findall(r'<figure class="chart" data-total="(\d+)"', page)
    assert (hourly, daily) == ("3", "4")
    assert 'data-series="infected" data-total="1"' in page
    rows = dict(re.findall(r"<tr><th>(S\d|inbound|outbound)</th><td>(\d+)</td>", page))
    assert rows == {"S1": "2", "S2": "1", "S4": "1", "inbound": "3", "outbound": "1"}
    assert "<polyline" in page


def test_quarantine_search_by_filter_fields(web: WebHarness) -> None:
    store = web.store()
    qid = quarantine(store)
    web.login()
    assert qid in web.client.get("/quarantine").text
    assert qid in web.client.get("/quarantine?recipient=example.org&finding=eicar&point=S1").text
    assert qid in web.client.get("/quarantine?since=1d&released=no").text
    assert qid not in web.client.get("/quarantine?sender=other.example").text
    assert qid not in web.client.get("/quarantine?point=S4").text
    assert [e["id"] for e in web.client.get("/api/quarantine?finding=eicar").json()] == [qid]


@pytest.mark.parametrize(
    "query",
    [
        "since=yesterday-ish",
        "until=2024-13-45",
        "point=S9",
        "released=maybe",
        "since=" + "9" * 318 + "d",
    ],
)
def test_quarantine_search_with_a_bad_field_says_which(web: WebHarness, query: str) -> None:
    web.login()
    answer = web.client.get(f"/quarantine?{query}")
    assert answer.status_code == 400
    assert query.split("=", maxsplit=1)[0] + ":" in answer.text
    assert web.client.get(f"/api/quarantine?{query}").status_code == 400


def test_events_page_lists_history_newest_first(web: WebHarness) -> None:
    store = web.store()
    qid = quarantine(store)
    web.login()
    page = web.client.get("/events").text
    assert f'href="/quarantine/{qid}"' in page
    assert web.client.get("/api/events").json()[0]["quarantine_id"] == qid


def test_status_page_says_the_daemon_is_down(web: WebHarness) -> None:
    web.login()
    page = web.client.get("/status").text
    assert "does not answer" in page
    assert web.client.get("/api/status").json()["up"] is False


def test_configuration_is_shown_with_the_password_hash_masked(web: WebHarness) -> None:
    web.login()
    page = web.client.get("/config").text
    assert "[web]" in page and "password_hash" in page
    assert "(set, not shown)" in page
    assert "scrypt$" not in page
    assert str(web.root / "mailwarden.toml") in page  # where values came from


# --- release and delete -------------------------------------------------------------------------


def test_release_to_chosen_recipients_delivers_a_marked_copy(tmp_path: Path) -> None:
    with smtp_sink() as (sink, port):
        web = make_harness(tmp_path, extra="")
        web.config["release"]["port"] = port
        qid = quarantine(web.store())
        web.login()
        answer = web.client.post(
            f"/quarantine/{qid}/release",
            data={"csrf": web.csrf(), "rcpt": ["carol@example.org"], "other": "admin@example.net"},
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
        assert len(sink.messages) == 1
        received = sink.messages[0]
        assert received.recipients == ["carol@example.org", "admin@example.net"]
        assert received.data.lower().startswith(b"x-mailwarden-release: v=1; id=" + qid.encode())
        assert web.store().get(qid).released_to == ("carol@example.org", "admin@example.net")
        page = web.client.get(answer.headers["location"]).text
        assert "Released to carol@example.org, admin@example.net." in page
        # a second release needs "release again"
        again = web.client.post(
            f"/quarantine/{qid}/release",
            data={"csrf": web.csrf(), "rcpt": ["bob@example.org"]},
        )
        assert again.status_code == 400 and "Already released" in again.text
        assert len(sink.messages) == 1


def test_release_with_no_recipient_or_a_bad_address_is_refused(web: WebHarness) -> None:
    qid = quarantine(web.store())
    web.login()
    for data, text in (
        ({}, "Choose at least one recipient."),
        ({"rcpt": ["stranger@else.example"]}, "Choose at least one recipient."),
        ({"other": "not an address"}, "Not an address"),
    ):
        answer = web.client.post(f"/quarantine/{qid}/release", data={"csrf": web.csrf(), **data})
        assert answer.status_code == 400 and text in answer.text
    assert web.store().get(qid).released is None


def test_release_to_an_unreachable_server_says_so_and_keeps_the_message(
    web: WebHarness,
) -> None:
    web.config["release"]["port"] = 1  # nothing listens there
    qid = quarantine(web.store())
    web.login()
    answer = web.client.post(
        f"/quarantine/{qid}/release", data={"csrf": web.csrf(), "rcpt": ["bob@example.org"]}
    )
    assert answer.status_code == 502
    assert "Not released: cannot reach 127.0.0.1:1" in answer.text
    assert web.store().get(qid).released is None


def test_delete_removes_the_message(web: WebHarness) -> None:
    qid = quarantine(web.store())
    web.login()
    answer = web.client.post(f"/quarantine/{qid}/delete", data={"csrf": web.csrf()})
    assert answer.status_code == 200
    assert f"Deleted {qid}." in answer.text
    assert web.client.get(f"/quarantine/{qid}").status_code == 404


# --- bad input and a store that is down ---------------------------------------------------------


@pytest.mark.parametrize(
    ("qid", "text"),
    [
        ("0" * 32, "no quarantined message with id"),
        ("not-an-id", "not a quarantine id"),
        ("../../etc/passwd", ""),
        ("%00" + "a" * 31, "not a quarantine id"),
        ("A" * 5000, "not a quarantine id"),
    ],
)
def test_unknown_or_malformed_ids_get_a_404_page(web: WebHarness, qid: str, text: str) -> None:
    web.login()
    for path in (f"/quarantine/{qid}", f"/quarantine/{qid}/raw"):
        answer = web.client.get(path)
        assert answer.status_code == 404, path
        assert text.lower() in answer.text.lower()
    answer = web.client.post(f"/quarantine/{qid}/delete", data={"csrf": web.csrf()})
    assert answer.status_code == 404


def test_store_down_is_said_on_every_page_that_reads_it(tmp_path: Path) -> None:
    def broken() -> None:
        raise StoreError("cannot open the store database: disk I/O error")

    web = make_harness(tmp_path, store_factory=broken)
    web.login()
    for path in ["/", "/quarantine", "/events", "/quarantine/" + "a" * 32]:
        answer = web.client.get(path)
        assert answer.status_code == 503, path
        assert "Store is down" in answer.text and "disk I/O error" in answer.text
    assert web.client.get("/api/events").json() == {"error": "store is down"}
    assert web.client.get("/status").status_code == 200  # pages without the store still work


def test_a_real_store_that_cannot_be_opened_is_down_not_a_crash(tmp_path: Path) -> None:
    web = make_harness(tmp_path)
    web.config["store"]["database"] = str(tmp_path)  # a folder: sqlite cannot open it
    web.login()
    answer = web.client.get("/quarantine")
    assert answer.status_code == 503 and "Store is down" in answer.text


def test_oversized_and_odd_form_input_is_refused_cleanly(web: WebHarness) -> None:
    web.login()
    qid = quarantine(web.store())
    answer = web.client.post(
        f"/quarantine/{qid}/release",
        content=b"csrf=" + b"x" * (200 * 1024),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code in (400, 403, 413)
    answer = web.client.post(
        f"/quarantine/{qid}/release",
        content=b'--x\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\n'
        b"A\r\n--x--\r\n",
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert answer.status_code in (400, 403)
    assert web.store().get(qid).released is None


def test_unknown_page_is_404_after_login_and_a_redirect_before(web: WebHarness) -> None:
    assert web.client.get("/nope", follow_redirects=False).status_code == 303
    web.login()
    assert web.client.get("/nope").status_code == 404


def test_logins_and_deletions_are_logged_for_the_audit(
    web: WebHarness, caplog: pytest.LogCaptureFixture
) -> None:
    qid = quarantine(web.store())
    with caplog.at_level(logging.INFO, logger="mailwarden.web"):
        web.login("wrong password", user="mallory\x1b[2J")
        web.login()
        web.client.post(f"/quarantine/{qid}/delete", data={"csrf": web.csrf()})
    text = caplog.text
    assert "login failed for 'mallory?[2J' from testclient" in text
    assert "admin logged in from testclient" in text
    assert f"quarantine id {qid} deleted by admin" in text
