"""The engine: signatures, YARA rules and heuristics applied to every object of a message.

Usage::

    engine = Engine.load(EngineSettings.from_config(config))
    verdict = engine.scan_bytes(raw)            # one message -> Verdict
    verdict = engine.scan_file(path)            # mapped, not read, when large

The engine does no network or MTA I/O and keeps no per-message state between
calls, so one loaded engine serves any number of scans (and worker processes
forked after :meth:`Engine.load` share its database pages).

SECURITY: the engine reads hostile bytes and must stay bounded: the walker
enforces the limits; every exception that is not a limit is contained either in
the walker (malformed container: warning) or here (internal failure: an
``error`` verdict, never ``clean``).  It needs read access to the signature
files and write access to the cache folder only.
"""

from __future__ import annotations

import mmap
import os
import time
from collections.abc import Callable
from pathlib import Path

from mailwarden.engine.filetype import ARCHIVE_KINDS, FileKind
from mailwarden.engine.heuristics import check as heuristic_check
from mailwarden.engine.limits import LimitExceeded
from mailwarden.engine.objects import Buffer, ScanObject, WalkContext
from mailwarden.engine.settings import EngineSettings
from mailwarden.engine.signatures import SignatureSet, load_signatures
from mailwarden.engine.signatures.yara import YaraRules
from mailwarden.engine.walk import walk
from mailwarden.verdict import SEVERITY, Category, Finding, Status, Verdict, display_name

YARA_SUFFIXES = (".yar", ".yara")

#: kinds whose own matches wait for what is inside them: clamd reports what an
#: archive or an OLE2 document embeds before the container's own hash (but a
#: PDF's own hash first, as measured against clamd 1.4)
_CONTAINER_KINDS = ARCHIVE_KINDS | {FileKind.OLE2}

#: files at least this large are mapped rather than read into memory
_MAP_THRESHOLD = 1024 * 1024


class Engine:
    """A loaded signature database plus the settings to scan with it."""

    def __init__(
        self, settings: EngineSettings, signatures: SignatureSet, yara: YaraRules | None
    ) -> None:
        self.settings = settings
        self.signatures = signatures
        self.yara = yara
        self.loaded_at = time.time()

    @classmethod
    def load(cls, settings: EngineSettings) -> Engine:
        """Load (or fetch from the cache) every configured database.

        Folders that do not exist are skipped, so the default configuration
        works whether or not freshclam's folder is present.
        """
        # once, here: `mailwarden update` switches a symlinked folder by renaming
        # the link, and a load that followed the link for each file could mix sets
        resolved = tuple(_resolve(p) for p in settings.databases)
        present = tuple(p for p in resolved if p.exists())
        clamav_paths, yara_paths = _split_yara(present)
        signatures = load_signatures(
            clamav_paths,
            bundled=settings.bundled,
            cache_dir=settings.cache_dir,
            matcher=settings.matcher,  # type: ignore[arg-type]
        )
        yara = YaraRules.load(yara_paths) if yara_paths else None
        return cls(settings, signatures, yara)

    @property
    def signature_count(self) -> int:
        return self.signatures.signature_count + (self.yara.rule_count if self.yara else 0)

    @property
    def version(self) -> str:
        """freshclam's container versions when loaded, else a digest of the files."""
        report = self.signatures.report
        return report.version or f"local-{report.digest[:12]}"

    def scan_file(self, path: str | os.PathLike[str], *, as_mail: bool = True) -> Verdict:
        """Scan a file; large files are mapped read-only instead of read."""
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < _MAP_THRESHOLD:
                return self.scan_bytes(fh.read(), as_mail=as_mail)
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                return self.scan_bytes(mapped, as_mail=as_mail)

    def scan_bytes(
        self,
        data: Buffer,
        *,
        as_mail: bool = True,
        clock: Callable[[], float] = time.perf_counter,
    ) -> Verdict:
        """Scan one message (or file) and return its verdict."""
        started = clock()
        ctx = WalkContext(self.settings.limits)
        findings: list[Finding] = []
        try:
            self._collect(data, ctx, findings, as_mail=as_mail)
        except Exception as exc:
            return Verdict(
                Status.ERROR,
                tuple(findings),
                reason=f"internal error: {type(exc).__name__}: {exc}",
                size=len(data),
                timings={"scan": clock() - started},
            )
        finally:
            ctx.close()
        return _verdict(findings, ctx, len(data), clock() - started)

    def _collect(
        self, data: Buffer, ctx: WalkContext, findings: list[Finding], *, as_mail: bool
    ) -> None:
        stop_early = not self.settings.all_matches
        heuristics = self.settings.heuristics
        # An archive's own matches wait until its members are scanned: clamd
        # reports what it finds inside a container before the container's own
        # hash, and the name an administrator sees should not depend on the
        # scanner.  Stack of (depth, findings) for archives on the current path.
        deferred: list[tuple[int, list[Finding]]] = []
        for obj, kind in walk(ScanObject(data), ctx, as_mail=as_mail):
            while deferred and obj.depth <= deferred[-1][0]:
                findings.extend(deferred.pop()[1])
                if stop_early:
                    return
            part = display_name(obj.part, limit=400)
            try:
                infected = self._match(obj, kind, part, ctx, all_matches=not stop_early)
            except LimitExceeded as exc:
                # the time limit ran out inside one object: what was found stands
                ctx.unscanned(obj.part, exc.reason)
                break
            if stop_early and infected and kind in _CONTAINER_KINDS:
                deferred.append((obj.depth, infected))
            elif infected:
                findings.extend(infected)
                if stop_early:
                    return
            for hit in heuristic_check(obj, kind, heuristics):
                findings.append(Finding(hit.name, part, "heuristics", Category.SUSPICIOUS))
        while deferred:
            findings.extend(deferred.pop()[1])
            if stop_early:
                return

    def _match(
        self, obj: ScanObject, kind: FileKind, part: str, ctx: WalkContext, *, all_matches: bool
    ) -> list[Finding]:
        infected = [
            Finding(m.name, part, m.engine, official=m.official)
            for m in self.signatures.match(
                obj.data,
                kind,
                container=obj.parent_kind,
                all_matches=all_matches,
                check_time=ctx.budget.check_time,
            )
        ]
        if self.yara is not None and kind is not FileKind.EMPTY:
            infected.extend(
                Finding(rule, part, "yara", official=False) for rule in self.yara.match(obj.data)
            )
        return infected


def _verdict(findings: list[Finding], ctx: WalkContext, size: int, seconds: float) -> Verdict:
    status = Status.CLEAN
    for f in findings:
        candidate = Status.INFECTED if f.category is Category.INFECTED else Status.SUSPICIOUS
        if SEVERITY[candidate] > SEVERITY[status]:
            status = candidate
    reason: str | None = None
    if ctx.unscanned_notes:
        part, why = ctx.unscanned_notes[0]
        where = f" in {display_name(part)}" if part else ""
        reason = f"{why}{where}"
        if status is Status.CLEAN:
            status = Status.UNSCANNED
    # infected findings first, in the order found: the first is the name clamd-style output shows
    ordered = sorted(findings, key=lambda f: f.category is not Category.INFECTED)
    return Verdict(status, tuple(ordered), reason=reason, size=size, timings={"scan": seconds})


def _resolve(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: left as is, and skipped as missing
        return path


def _split_yara(paths: tuple[Path, ...]) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    clamav: list[Path] = []
    yara: list[Path] = []
    for p in paths:
        if p.is_dir():
            clamav.append(p)
            yara.extend(sorted(q for q in p.iterdir() if q.suffix.lower() in YARA_SUFFIXES))
        elif p.suffix.lower() in YARA_SUFFIXES:
            yara.append(p)
        else:
            clamav.append(p)
    return tuple(clamav), tuple(yara)
