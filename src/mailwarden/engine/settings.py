"""Engine settings: what to load and how to bound a scan, built from the config.

Usage::

    settings = EngineSettings.from_config(load_config(path))
    settings = dataclasses.replace(settings, databases=(Path("sigs"),), bundled=False)

SECURITY: paths name signature files the administrator chose; nothing here is
derived from mail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mailwarden.config import Config
from mailwarden.engine.heuristics import HeuristicSettings
from mailwarden.engine.limits import Limits


@dataclass(frozen=True, slots=True)
class EngineSettings:
    databases: tuple[Path, ...] = ()
    bundled: bool = True
    cache_dir: Path | None = None
    matcher: str = "auto"
    limits: Limits = field(default_factory=Limits)
    heuristics: HeuristicSettings = field(default_factory=HeuristicSettings)
    #: report every finding instead of stopping at the first infection
    all_matches: bool = False

    @classmethod
    def from_config(cls, config: Config) -> EngineSettings:
        eng = config["engine"]
        lim = config["limits"]
        heur = config["heuristics"]
        cache = eng["cache_dir"]
        return cls(
            databases=tuple(Path(p) for p in eng["databases"]),
            bundled=eng["bundled"],
            cache_dir=Path(cache) if cache else None,
            matcher=eng["matcher"],
            limits=Limits(
                max_depth=lim["max_depth"],
                max_files=lim["max_files"],
                max_total_bytes=lim["max_total_bytes"],
                max_ratio=lim["max_ratio"],
                max_seconds=lim["max_seconds"],
                spool_threshold=lim["spool_threshold"],
                max_header_bytes=lim["max_header_bytes"],
                max_mime_parts=lim["max_mime_parts"],
            ),
            heuristics=HeuristicSettings(**heur),
        )
