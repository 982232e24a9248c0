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

from mailwarden.engine.limits import LimitExceeded, Limits
from mailwarden.engine.pool import ScanPool
from mailwarden.engine.scanner import Engine
from mailwarden.engine.settings import EngineSettings

__all__ = ["Engine", "EngineSettings", "LimitExceeded", "Limits", "ScanPool"]
