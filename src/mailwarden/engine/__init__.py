"""The scanning engine: MIME and archive walk, signatures, YARA, heuristics.

Public API::

    from mailwarden.engine import Engine, EngineSettings, ScanPool
    engine = Engine.load(EngineSettings.from_config(config))
    verdict = engine.scan_bytes(raw)

Layering: the engine does no network or MTA I/O and decides nothing; it only
produces a :class:`~mailwarden.verdict.Verdict`.

SECURITY: reads hostile bytes under the limits of ``engine/limits.py``; needs
read access to signature files and write access to its cache folder.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mailwarden.engine.limits import LimitExceeded, Limits

if TYPE_CHECKING:
    from mailwarden.engine.pool import ScanPool
    from mailwarden.engine.scanner import Engine
    from mailwarden.engine.settings import EngineSettings

__all__ = ["Engine", "EngineSettings", "LimitExceeded", "Limits", "ScanPool"]

# Loaded on first use: importing a leaf module (engine.objects, engine.limits)
# must not pull in Hyperscan, YARA and every extractor.
_LAZY = {
    "Engine": "mailwarden.engine.scanner",
    "EngineSettings": "mailwarden.engine.settings",
    "ScanPool": "mailwarden.engine.pool",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
