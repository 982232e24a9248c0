"""The web interface: a Starlette application over the store, the daemon and the metrics.

Usage::

    app = WebApp(config, settings, key=load_key(Path(settings.secret_file))).asgi()
    uvicorn.run(app, ...)                      # ``web/server.py`` does this

Pages: ``/`` dashboard, ``/quarantine`` (search) and ``/quarantine/ID``
(preview, release, delete), ``/events``, ``/status`` (the daemon),
``/config`` (read-only); JSON under ``/api/``; ``/metrics`` for Prometheus.

SECURITY: every page and /api route needs a session (pages redirect to
``/login``, /api answers 401); ``/metrics`` takes a session or HTTP Basic
with the same credentials.  Every state change is a POST that must carry
the session's CSRF token (403 otherwise); the login form has its own token
bound to a cookie.  Failed logins are rate-limited per client address.
Responses carry a Content-Security-Policy without any script source, so
nothing from a message can run even if it reached a page; pages are Jinja2
templates with autoescaping, and mail text goes through ``display_name``.
Quarantine ids from URLs are checked by ``parse_id`` before the store sees
them.  Needs read and write access to the store (release, delete), read
access to the release secret and the daemon's socket.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailwarden.actions import ReleaseError, load_secret, release, release_options
from mailwarden.cli.quarantine_cmd import when
from mailwarden.config import Config
from mailwarden.metrics.daemon import daemon_status
from mailwarden.metrics.exposition import Exporter
from mailwarden.store import (
    MalformedIdError,
    QuarantineFilter,
    QuarantineStore,
    StoreError,
    UnknownIdError,
    open_store,
    parse_id,
)
from mailwarden.verdict import display_name
from mailwarden.web.charts import line_chart
from mailwarden.web.configview import effective
from mailwarden.web.history import SERIES, breakdown, per_period, scans
from mailwarden.web.passwords import verify_password
from mailwarden.web.preview import preview
from mailwarden.web.ratelimit import LoginLimiter
from mailwarden.web.sessions import Session, SessionSigner, same_token
from mailwarden.web.settings import WebSettings

T = TypeVar("T")
log = logging.getLogger("mailwarden.web")
Handler = Callable[[Request, Session], Awaitable[Response]]

#: no script source at all: nothing in a page may run
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
_LOGIN_COOKIE = "mailwarden_login"
_ADDRESS = re.compile(r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9.-]{1,253}$")
_POINTS = ("S1", "S2", "S3", "S4", "cli")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")
_MAX_FIELD = 320


class SecurityHeaders:
    """ASGI middleware adding the headers above to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def add(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in _HEADERS if k not in names]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, add)


def _utc(stamp: float | None) -> str:
    if stamp is None:
        return ""
    return dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _show(value: object, limit: int = 300) -> str:
    return display_name("" if value is None else str(value), limit)


def _local_path(target: str | None) -> str:
    """``target`` when it is a path on this site, else ``/`` (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target[:500]
    return "/"


class WebApp:
    def __init__(
        self,
        config: Config,
        settings: WebSettings,
        *,
        key: bytes,
        store_factory: Callable[[], QuarantineStore] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.settings = settings
        self.clock = clock
        self.signer = SessionSigner(
            key, lifetime=settings.session_lifetime, password_hash=settings.password_hash
        )
        self.limiter = LoginLimiter(attempts=settings.login_attempts, window=settings.login_window)
        self.open_store = store_factory or (lambda: open_store(config))
        self.exporter = Exporter.from_config(config, daemon_socket=settings.daemon_socket)
        self.cookie = "__Host-mailwarden" if settings.tls else "mailwarden_session"
        # Basic credentials that verified, by digest, so a scrape every few
        # seconds does not pay for scrypt each time
        self._basic_ok: dict[str, float] = {}
        self.env = Environment(
            loader=PackageLoader("mailwarden.web", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
        )
        self.env.filters["utc"] = _utc
        self.env.filters["show"] = _show

    # --- the application -----------------------------------------------------------

    def asgi(self) -> ASGIApp:
        static = Path(__file__).parent / "static"
        routes = [
            Route("/login", self.login_page, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.guard(self.logout), methods=["POST"]),
            Route("/", self.guard(self.dashboard)),
            Route("/quarantine", self.guard(self.quarantine)),
            Route("/quarantine/{qid}", self.guard(self.entry)),
            Route("/quarantine/{qid}/raw", self.guard(self.raw)),
            Route("/quarantine/{qid}/release", self.guard(self.release), methods=["POST"]),
            Route("/quarantine/{qid}/delete", self.guard(self.delete), methods=["POST"]),
            Route("/events", self.guard(self.events)),
            Route("/status", self.guard(self.status)),
            Route("/config", self.guard(self.configuration)),
            Route("/api/events", self.guard(self.api_events, api=True)),
            Route("/api/quarantine", self.guard(self.api_quarantine, api=True)),
            Route("/api/status", self.guard(self.api_status, api=True)),
            Route("/metrics", self.metrics),
            Mount("/static", StaticFiles(directory=static), name="static"),
        ]
        app = Starlette(routes=routes, exception_handlers={404: self.not_found})
        return SecurityHeaders(app)

    def page(
        self,
        request: Request,
        name: str,
        status_code: int = 200,
        session: Session | None = None,
        **context: Any,
    ) -> HTMLResponse:
        template = self.env.get_template(name)
        html = template.render(
            session=session,
            path=request.url.path,
            username=session.user if session else "",
            **context,
        )
        return HTMLResponse(html, status_code=status_code)

    def guard(
        self, handler: Handler, *, api: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` behind the login: the session, and the CSRF token of a POST."""

        async def endpoint(request: Request) -> Response:
            session = self.signer.check(request.cookies.get(self.cookie))
            if session is None:
                if api:
                    return JSONResponse({"error": "login required"}, status_code=401)
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse("/login?" + _query(next=target), status_code=303)
            if request.method == "POST":
                form = await _form(request)
                if not same_token(session.csrf, form.get("csrf")):
                    return self.page(
                        request,
                        "error.html",
                        403,
                        session,
                        title="Refused",
                        message="The form's security token is missing or stale. Reload the "
                        "page and try again.",
                    )
                request.state.form = form
            return await handler(request, session)

        return endpoint

    async def not_found(self, request: Request, exc: Exception) -> Response:
        session = self.signer.check(request.cookies.get(self.cookie))
        if session is None and not request.url.path.startswith("/static/"):
            if request.url.path.startswith("/api/"):
                return JSONResponse({"error": "login required"}, status_code=401)
            return RedirectResponse("/login", status_code=303)
        return self.page(
            request, "error.html", 404, session, title="Not found", message="No such page."
        )

    # --- login --------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        if self.signer.check(request.cookies.get(self.cookie)):
            return RedirectResponse(_local_path(request.query_params.get("next")), 303)
        return self._login_form(request, 200, "")

    def _login_form(self, request: Request, status_code: int, error: str) -> Response:
        # the token already set is kept: a browser's own requests that land here
        # (a favicon) must not invalidate the form on screen
        token = request.cookies.get(_LOGIN_COOKIE, "")
        if not _TOKEN.match(token):
            token = secrets.token_urlsafe(24)
        response = self.page(
            request,
            "login.html",
            status_code,
            login_token=token,
            next=_local_path(request.query_params.get("next")),
            error=error,
        )
        response.set_cookie(
            _LOGIN_COOKIE,
            token,
            max_age=3600,
            httponly=True,
            samesite="strict",
            secure=self.settings.tls,
        )
        return response

    async def login(self, request: Request) -> Response:
        address = request.client.host if request.client else "-"
        if self.limiter.blocked(address):
            log.warning("login from %s refused: too many failures", address)
            response = self._login_form(
                request, 429, "Too many failed logins from your address; wait and try again."
            )
            response.headers["Retry-After"] = str(self.limiter.retry_after(address))
            return response
        form = await _form(request)
        if not same_token(request.cookies.get(_LOGIN_COOKIE, ""), form.get("login_token")):
            return self._login_form(
                request, 403, "The login form expired or was not sent by this site; try again."
            )
        user, password = str(form.get("username", "")), str(form.get("password", ""))
        if not await run_in_threadpool(self._credentials_ok, user, password):
            self.limiter.failed(address)
            log.warning("login failed for %r from %s", _show(user, 64), address)
            return self._login_form(request, 401, "Wrong user name or password.")
        self.limiter.succeeded(address)
        log.info("%s logged in from %s", self.settings.username, address)
        cookie, _ = self.signer.issue(self.settings.username)
        response = RedirectResponse(_local_path(str(form.get("next", "/"))), status_code=303)
        response.set_cookie(
            self.cookie,
            cookie,
            max_age=self.settings.session_lifetime,
            httponly=True,
            samesite="strict",
            secure=self.settings.tls,
        )
        response.delete_cookie(_LOGIN_COOKIE)
        return response

    def _credentials_ok(self, user: str, password: str) -> bool:
        # both compared every time, so the answer takes as long for a wrong name
        name_ok = hmac.compare_digest(user.encode(), self.settings.username.encode())
        password_ok = verify_password(password, self.settings.password_hash)
        return name_ok and password_ok

    async def logout(self, request: Request, session: Session) -> Response:
        self.signer.revoke(session)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(self.cookie, secure=self.settings.tls, httponly=True)
        return response

    # --- the store ----------------------------------------------------------------------

    async def _store(
        self, request: Request, session: Session, work: Callable[[QuarantineStore], T]
    ) -> T | Response:
        """``work(store)`` in a thread; the store-down or not-found page on failure."""

        def run() -> T:
            store = self.open_store()
            try:
                return work(store)
            finally:
                store.close()

        try:
            return await run_in_threadpool(run)
        except MalformedIdError as exc:
            return self._not_found(request, session, str(exc))
        except UnknownIdError as exc:
            return self._not_found(request, session, str(exc))
        except StoreError as exc:
            return self.page(
                request,
                "error.html",
                503,
                session,
                title="Store is down",
                message=f"The quarantine store cannot be read: {_show(exc)}. Mail is deferred "
                "by the agents meanwhile, not lost.",
            )

    def _not_found(self, request: Request, session: Session, why: str) -> Response:
        return self.page(
            request,
            "error.html",
            404,
            session,
            title="No such quarantined message",
            message=_show(why),
        )

    async def dashboard(self, request: Request, session: Session) -> Response:
        now = self.clock()
        days = self.settings.dashboard_days
        limit = self.settings.dashboard_max_events
        got = await self._store(
            request, session, lambda s: s.events(since=now - days * 86400, limit=limit)
        )
        if isinstance(got, Response):
            return got
        events = scans(got)
        hourly = line_chart(
            per_period(events, now=now, period=3600, count=48), title="Messages per hour"
        )
        daily = line_chart(
            per_period(events, now=now, period=86400, count=days), title="Messages per day"
        )
        return self.page(
            request,
            "dashboard.html",
            session=session,
            charts=(hourly, daily),
            series=SERIES,
            by_point=breakdown(events, lambda e: e.envelope.point.value),
            by_direction=breakdown(events, lambda e: e.envelope.direction.value),
            truncated=len(got) >= limit,
            days=days,
            recent=got[:10],
        )

    async def quarantine(self, request: Request, session: Session) -> Response:
        params = request.query_params
        try:
            where, form = _filter(params, self.settings.page_size)
        except ValueError as exc:
            return self.page(
                request,
                "quarantine.html",
                400,
                session,
                entries=[],
                form=dict(params),
                error=str(exc),
                points=_POINTS,
                notice="",
            )
        got = await self._store(request, session, lambda s: s.entries(where))
        if isinstance(got, Response):
            return got
        deleted = params.get("deleted", "")
        return self.page(
            request,
            "quarantine.html",
            session=session,
            entries=got,
            form=form,
            error="",
            points=_POINTS,
            notice=f"Deleted {_show(deleted, 40)}." if deleted else "",
        )

    async def entry(self, request: Request, session: Session) -> Response:
        qid = request.path_params["qid"]
        got = await self._store(
            request, session, lambda s: (s.get(parse_id(qid)), s.read(parse_id(qid)))
        )
        if isinstance(got, Response):
            return got
        entry, raw = got
        view = await run_in_threadpool(preview, raw)
        notice = request.query_params.get("released", "")
        return self.page(
            request,
            "entry.html",
            session=session,
            entry=entry,
            view=view,
            notice=f"Released to {_show(notice)}." if notice else "",
            error="",
        )

    async def raw(self, request: Request, session: Session) -> Response:
        qid = request.path_params["qid"]
        got = await self._store(request, session, lambda s: s.read(parse_id(qid)))
        if isinstance(got, Response):
            return got
        name = parse_id(qid)
        return Response(
            got,
            media_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{name}.eml"'},
        )

    async def release(self, request: Request, session: Session) -> Response:
        qid = request.path_params["qid"]
        form: FormData = request.state.form
        got = await self._store(request, session, lambda s: s.get(parse_id(qid)))
        if isinstance(got, Response):
            return got
        entry = got
        chosen = [r for r in form.getlist("rcpt") if r in entry.envelope.recipients]
        extra = [a.strip() for a in str(form.get("other", "")).replace(";", ",").split(",")]
        extra = [a for a in extra if a]
        bad = [a for a in extra if not _ADDRESS.match(a)]
        error = ""
        if bad:
            error = f"Not an address: {_show(bad[0], 100)}"
        elif len(extra) > 20:
            error = "At most 20 other addresses."
        elif not chosen and not extra:
            error = "Choose at least one recipient."
        elif entry.released and not form.get("again"):
            error = (
                f"Already released on {_utc(entry.released)} UTC; tick 'release again' to "
                "send it once more."
            )
        recipients = [*chosen, *(a for a in extra if a not in chosen)]
        if not error:
            section = self.config["release"]
            try:
                secret = load_secret(Path(section["secret_file"]), create=True)
                result = await self._store(
                    request,
                    session,
                    lambda s: _release_sync(
                        s,
                        entry.id,
                        secret=secret,
                        recipients=recipients,
                        **release_options(section),
                    ),
                )
            except ReleaseError as exc:
                error = f"Not released: {_show(exc, 500)}"
            else:
                if isinstance(result, Response):
                    return result
                log.info(
                    "quarantine id %s released to %s by %s",
                    entry.id,
                    ", ".join(result.accepted),
                    session.user,
                )
                return RedirectResponse(
                    f"/quarantine/{entry.id}?" + _query(released=", ".join(result.accepted)),
                    status_code=303,
                )
        raw = await self._store(request, session, lambda s: s.read(entry.id))
        if isinstance(raw, Response):
            return raw
        return self.page(
            request,
            "entry.html",
            400 if not error.startswith("Not released") else 502,
            session,
            entry=entry,
            view=await run_in_threadpool(preview, raw),
            notice="",
            error=error,
        )

    async def delete(self, request: Request, session: Session) -> Response:
        qid = request.path_params["qid"]

        def work(store: QuarantineStore) -> str:
            entry = store.get(parse_id(qid))
            store.delete(entry.id)
            return entry.id

        got = await self._store(request, session, work)
        if isinstance(got, Response):
            return got
        log.info("quarantine id %s deleted by %s", got, session.user)
        return RedirectResponse("/quarantine?" + _query(deleted=got), status_code=303)

    async def events(self, request: Request, session: Session) -> Response:
        until = _number(request.query_params.get("until"))
        limit = self.settings.page_size
        got = await self._store(request, session, lambda s: s.events(until=until, limit=limit))
        if isinstance(got, Response):
            return got
        older = got[-1].time - 1e-6 if len(got) >= limit else None
        return self.page(request, "events.html", session=session, events=got, older=older)

    async def status(self, request: Request, session: Session) -> Response:
        status = await run_in_threadpool(
            daemon_status, self.settings.daemon_socket, timeout=self.settings.daemon_timeout
        )
        return self.page(
            request,
            "status.html",
            session=session,
            status=status,
            socket=self.settings.daemon_socket,
        )

    async def configuration(self, request: Request, session: Session) -> Response:
        return self.page(
            request,
            "config.html",
            session=session,
            sections=effective(self.config),
            files=self.config.files,
        )

    # --- JSON and metrics ----------------------------------------------------------------

    async def api_events(self, request: Request, session: Session) -> Response:
        limit = self.settings.page_size
        got = await self._store(request, session, lambda s: s.events(limit=limit))
        if isinstance(got, Response):
            return _json_error(got)
        return JSONResponse([e.to_dict() for e in got])

    async def api_quarantine(self, request: Request, session: Session) -> Response:
        try:
            where, _ = _filter(request.query_params, self.settings.page_size)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        got = await self._store(request, session, lambda s: s.entries(where))
        if isinstance(got, Response):
            return _json_error(got)
        return JSONResponse([e.to_dict() for e in got])

    async def api_status(self, request: Request, session: Session) -> Response:
        status = await run_in_threadpool(
            daemon_status, self.settings.daemon_socket, timeout=self.settings.daemon_timeout
        )
        return JSONResponse(dataclasses.asdict(status))

    async def metrics(self, request: Request) -> Response:
        session = self.signer.check(request.cookies.get(self.cookie))
        if session is None and not await self._basic_auth(request):
            return Response(
                "login required\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="mailwarden", charset="UTF-8"'},
                media_type="text/plain",
            )
        body, content_type = await run_in_threadpool(self.exporter.render)
        return Response(body, media_type=content_type)

    async def _basic_auth(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or not value or len(value) > 2048:
            return False
        digest = hashlib.sha256(value.encode()).hexdigest()
        now = self.clock()
        if self._basic_ok.get(digest, 0) > now:
            return True
        address = request.client.host if request.client else "-"
        if self.limiter.blocked(address):
            return False
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        if not await run_in_threadpool(self._credentials_ok, user, password):
            self.limiter.failed(address)
            return False
        if len(self._basic_ok) > 100:
            self._basic_ok.clear()
        self._basic_ok[digest] = now + 300
        return True


def _release_sync(store: QuarantineStore, qid: str, **kwargs: Any) -> Any:
    import asyncio

    return asyncio.run(release(store, qid, **kwargs))


async def _form(request: Request) -> FormData:
    # login and action forms are a few short fields: no files, small parts
    return await request.form(max_files=0, max_fields=100, max_part_size=64 * 1024)


def _query(**params: str) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _json_error(page: Response) -> Response:
    return JSONResponse({"error": "store is down"}, status_code=page.status_code)


def _filter(params: Any, limit: int) -> tuple[QuarantineFilter, dict[str, str]]:
    """The search form's fields as a QuarantineFilter; ValueError names a bad field."""
    form = {k: str(params.get(k, ""))[:_MAX_FIELD].strip() for k in _FILTER_FIELDS}
    times: dict[str, float | None] = {}
    for key in ("since", "until"):
        try:
            times[key] = when(form[key]) if form[key] else None
        except argparse.ArgumentTypeError as exc:
            raise ValueError(f"{key}: {exc}") from None
        except OverflowError:
            raise ValueError(f"{key}: out of range") from None
    if form["point"] and form["point"] not in _POINTS:
        raise ValueError(f"point: one of {', '.join(_POINTS)}")
    released = {"": None, "yes": True, "no": False}.get(form["released"])
    if form["released"] not in ("", "yes", "no"):
        raise ValueError("released: yes, no or empty")
    where = QuarantineFilter(
        since=times["since"],
        until=times["until"],
        sender=form["sender"] or None,
        recipient=form["recipient"] or None,
        finding=form["finding"] or None,
        point=form["point"] or None,
        released=released,
        limit=limit,
    )
    return where, form


_FILTER_FIELDS = ("since", "until", "sender", "recipient", "finding", "point", "released")
