"""The web interface: dashboard, quarantine, events, daemon status, configuration, /metrics.

Public API::

    from mailwarden.web import WebApp, WebSettings, hash_password, run_web
    settings = WebSettings.from_config(config)
    app = WebApp(config, settings, key=load_key(path)).asgi()   # an ASGI application
    run_web(config, listen="127.0.0.1:8025")                    # uvicorn, until SIGTERM

Modules: ``app`` (routes and pages), ``sessions`` (signed cookies, CSRF),
``passwords`` (scrypt), ``ratelimit`` (failed logins), ``history`` and
``charts`` (the dashboard's figures as SVG), ``preview`` (a message as
data), ``configview`` (masked configuration), ``server`` (uvicorn).
docs/web.md is the administrator's guide.

SECURITY: see ``app``: login on everything, CSRF on every change, a
script-free Content-Security-Policy, autoescaped templates.
"""

from mailwarden.web.app import WebApp
from mailwarden.web.passwords import hash_password, verify_password
from mailwarden.web.server import run_exporter, run_web
from mailwarden.web.sessions import load_key
from mailwarden.web.settings import WebSettings

__all__ = [
    "WebApp",
    "WebSettings",
    "hash_password",
    "load_key",
    "run_exporter",
    "run_web",
    "verify_password",
]
