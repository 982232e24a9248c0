"""What the daemon's workers scan with: the engine behind one small interface.

A generation's loader calls a *backend factory* once, then forks its workers,
which share what it loaded.  The default factory, :func:`load_engine`, loads
:class:`mailwarden.engine.Engine`; the factory is named by an import path
(``"package.module:function"``) because the loader is a fresh interpreter.
That name is the daemon's one seam for tests that need a scanner whose
speed or failures they control; real deployments never change it::

    backend = resolve_factory(DEFAULT_FACTORY)(engine_settings)
    verdict = backend.scan(data, all_matches=False)

SECURITY: the factory runs inside the loader with the daemon's rights; it is
chosen by code, never by configuration files or clients.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import Callable
from typing import Protocol

from mailwarden.engine import Engine, EngineSettings
from mailwarden.engine.objects import Buffer
from mailwarden.verdict import Verdict

DEFAULT_FACTORY = "mailwarden.daemon.backend:load_engine"


class Backend(Protocol):
    """A loaded database, ready to scan in any process forked after loading."""

    @property
    def version(self) -> str: ...

    @property
    def signature_count(self) -> int: ...

    def scan(self, data: Buffer, *, all_matches: bool) -> Verdict: ...


BackendFactory = Callable[[EngineSettings], Backend]


class EngineBackend:
    """The real engine; an all-matches twin shares the same loaded signatures."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.loaded_at = time.time()
        self._all = Engine(
            dataclasses.replace(engine.settings, all_matches=True), engine.signatures, engine.yara
        )

    @property
    def version(self) -> str:
        return self.engine.version

    @property
    def signature_count(self) -> int:
        return self.engine.signature_count

    def scan(self, data: Buffer, *, all_matches: bool) -> Verdict:
        engine = self._all if all_matches else self.engine
        return engine.scan_bytes(data, as_mail=True)


def load_engine(settings: EngineSettings) -> Backend:
    return EngineBackend(Engine.load(settings))


def resolve_factory(name: str) -> BackendFactory:
    """``"module:function"`` -> the function."""
    module_name, sep, attr = name.partition(":")
    if not sep:
        raise ValueError(f"backend factory must be 'module:function', got {name!r}")
    factory: BackendFactory = getattr(importlib.import_module(module_name), attr)
    return factory
