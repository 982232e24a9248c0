"""Running the web interface and the standalone exporter under uvicorn.

Usage::

    run_web(config, listen=None)            # ``mailwarden web``
    run_exporter(config, listen=None)       # ``mailwarden metrics``

Both run until SIGTERM or SIGINT (uvicorn finishes the requests in hand);
SIGHUP is ignored, so a reload sent to every process leaves them running.

SECURITY: listens where the configuration says (loopback by default); a
listener on another address without TLS is logged as a warning, since the
password and the session cookie would cross the network in clear.  Started
as root, the process binds its listener, reads its key and TLS files, then
becomes ``[serve] user`` (``privileges.drop_root``) before the first request;
under ``mailwarden serve`` it is that user already.
"""

from __future__ import annotations

import logging
import signal
import socket
from pathlib import Path
from types import FrameType

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from mailwarden.config import Config
from mailwarden.metrics.exposition import Exporter
from mailwarden.privileges import Identity, drop_root, service_identity
from mailwarden.web.app import SecurityHeaders, WebApp
from mailwarden.web.sessions import load_key
from mailwarden.web.settings import WebSettings, split_listen

log = logging.getLogger("mailwarden.web")


def web_app(config: Config, settings: WebSettings) -> ASGIApp:
    """The checked application: ConfigError when it cannot work as configured."""
    settings.check(config)
    return WebApp(config, settings, key=load_key(Path(settings.secret_file))).asgi()


def exporter_app(config: Config) -> ASGIApp:
    exporter = Exporter.from_config(config)

    async def metrics(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        body, content_type = await run_in_threadpool(exporter.render)
        return Response(body, media_type=content_type)

    async def index(request: Request) -> Response:
        return PlainTextResponse("mailwarden metrics exporter: see /metrics\n")

    return SecurityHeaders(Starlette(routes=[Route("/metrics", metrics), Route("/", index)]))


def run_web(config: Config, *, listen: str | None = None) -> None:
    settings = WebSettings.from_config(config, listen=listen)
    settings.check(config)
    # before the key and the store are opened: their folders are made for the user
    target = service_identity(config)
    app = web_app(config, settings)
    if not settings.loopback and not settings.tls:
        log.warning(
            "listening on %s without TLS: passwords and session cookies cross the network "
            "in clear; set [web] tls_certificate and tls_key",
            settings.host,
        )
    _run(app, settings.host, settings.port, settings.tls_certificate, settings.tls_key, target)


def run_exporter(config: Config, *, listen: str | None = None) -> None:
    host, port = split_listen(listen or config["metrics"]["listen"])
    target = service_identity(config)
    _run(exporter_app(config), host, port, "", "", target)


def _run(
    app: ASGIApp, host: str, port: int, certificate: str, key: str, target: Identity | None
) -> None:
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            # uvicorn raises the signal again once it has stopped, so the process
            # would end "killed by SIGTERM"; a requested, graceful stop exits 0
            self._captured_signals.clear()

    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    ours = logging.getLogger("mailwarden")
    for name in ("uvicorn", "uvicorn.error"):
        theirs = logging.getLogger(name)
        theirs.handlers = list(ours.handlers)
        theirs.setLevel(logging.WARNING)
        theirs.propagate = False
    server = Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            ssl_certfile=certificate or None,
            ssl_keyfile=key or None,
            lifespan="off",
            proxy_headers=False,
            server_header=False,
            access_log=False,
            # our log lines only: uvicorn's own (bind errors, crashes) go to
            # the same handler as mailwarden's, warnings and worse
            log_config=None,
        )
    )
    # bound here, so a busy or forbidden address is one clear error (exit 2)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.create_server((host, port), family=family, backlog=128)
    log.info("listening on %s:%d%s", host, port, " (TLS)" if certificate else "")
    # the TLS key may be readable by root only: load it before dropping
    server.config.load()
    drop_root(target)
    server.run(sockets=[listener])
