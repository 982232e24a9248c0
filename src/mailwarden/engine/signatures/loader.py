"""Load ClamAV databases (files, directories, containers) into a SignatureSet.

:func:`load_signatures` is the one entry point.  It collects the database
files (a directory contributes every file with a known extension, sorted;
files it cannot use are counted in ``skipped`` as ``file type .xyz``), keys
them by the SHA-256 of their names and contents, and either loads the
compiled result from ``cache_dir`` or parses everything, compiles the
matcher and writes the cache for next time.

Files from ``.cvd/.cld/.cud`` containers and the bundled set are *official*;
anything else is unofficial, as clamd reports it with ``.UNOFFICIAL``.
``.ign2`` files are applied before the databases they filter.

SECURITY: needs only read access to the database files and write access to
``cache_dir``; it writes nowhere else (see ``cache``).  Database contents are
trusted as the administrator's choice but parsed defensively.  A failure to
write the cache is not an error: the set is still returned.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from mailwarden.engine.signatures import cvd, precompile
from mailwarden.engine.signatures.cache import read_cache, write_cache
from mailwarden.engine.signatures.matchers import (
    AhoMatcher,
    HyperscanMatcher,
    HyperscanPlan,
    Matcher,
    PendingMatcher,
    hyperscan_available,
)
from mailwarden.engine.signatures.parsers import (
    ALLOW_EXTS,
    HASH_EXTS,
    SUPPORTED_EXTS,
    DatabaseParser,
    file_chunks,
)
from mailwarden.engine.signatures.precompile import BODY_EXTS
from mailwarden.engine.signatures.sigset import LoadReport, SignatureSet
from mailwarden.engine.signatures.tables import TableBuilder, Tables, from_parts, to_parts
from mailwarden.errors import SignatureError

#: Body databases (bytes in all) from which patterns are compiled ahead in a
#: second process and a Hyperscan compile child is started in advance: below
#: this, starting them costs more than they save.
PRECOMPILE_FROM = 256 * 1024
#: Bump when anything that goes into the cache changes shape or meaning.
FORMAT_VERSION = "mailwarden-sigs-6"
BUNDLED_DIR = Path(__file__).parent / "bundled"

MatcherKind = Literal["auto", "hyperscan", "aho"]
#: database kinds that add no body pattern
_NO_PATTERNS = HASH_EXTS | ALLOW_EXTS


@dataclass(frozen=True, slots=True)
class _Source:
    path: Path
    ext: str
    official: bool


#: rule files in a database folder that the engine hands to YARA, not skipped
_LOADED_ELSEWHERE = frozenset({"yar", "yara"})


def _ext(path: Path) -> str:
    return path.suffix[1:].lower()


def _collect(paths: Sequence[Path], bundled: bool) -> tuple[list[_Source], Counter[str]]:
    sources: list[_Source] = []
    skipped: Counter[str] = Counter()

    def consider(path: Path, official: bool) -> None:
        ext = _ext(path)
        if ext in cvd.CONTAINER_EXTS:
            sources.append(_Source(path, ext, True))
        elif ext in SUPPORTED_EXTS:
            sources.append(_Source(path, ext, official))
        elif ext not in _LOADED_ELSEWHERE:
            skipped[f"file type .{ext}" if ext else "file without extension"] += 1

    for path in paths:
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.is_file():
                    consider(child, False)
        elif path.is_file():
            consider(path, False)
        else:
            raise SignatureError("no such database file or directory", file=str(path))
    if bundled:
        for child in sorted(BUNDLED_DIR.iterdir()):
            if _ext(child) in SUPPORTED_EXTS:
                sources.append(_Source(child, _ext(child), True))
    # ignore lists first, so they apply to every database loaded after them
    sources.sort(key=lambda s: s.ext != "ign2")
    return sources, skipped


def _cache_key(sources: list[_Source], matcher: str) -> str:
    # integer columns are cached in this machine's byte order
    key = hashlib.sha256(f"{FORMAT_VERSION}\n{matcher}\n{sys.byteorder}\n".encode())
    for src in sources:
        content = hashlib.sha256()
        with src.path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                content.update(chunk)
        key.update(f"{src.path.name}\n{int(src.official)}\n{content.hexdigest()}\n".encode())
    return key.hexdigest()


def _choose(matcher: MatcherKind) -> str:
    if matcher == "auto":
        return "hyperscan" if hyperscan_available() else "aho"
    if matcher == "hyperscan" and not hyperscan_available():
        raise SignatureError("the hyperscan matcher was requested but hyperscan is not installed")
    if matcher not in ("hyperscan", "aho"):
        raise SignatureError(f"unknown matcher {matcher!r}")
    return matcher


def _parse_all(sources: list[_Source], parser: DatabaseParser) -> list[str]:
    versions: list[str] = []
    for src in sources:
        if src.ext in cvd.CONTAINER_EXTS:
            header, members = cvd.members(src.path)
            versions.append(f"{src.path.stem}:{header.version}")
            for name, data in members:
                ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
                if ext not in SUPPORTED_EXTS:
                    parser.skipped[f"file type .{ext}" if ext else "file without extension"] += 1
                    continue
                parser.parse_bytes(data, ext, file=f"{src.path}[{name}]", official=True)
            continue
        if src.ext in HASH_EXTS:
            # the plain lines of a hash file are read in bulk, a few megabytes at a time
            with src.path.open("rb") as fh:
                parser.parse_chunks(
                    file_chunks(fh), src.ext, file=str(src.path), official=src.official
                )
            continue
        with src.path.open("rb") as fh:
            parser.parse_lines(_lines(fh), src.ext, file=str(src.path), official=src.official)
    return versions


def _lines(fh: BinaryIO) -> Iterator[str]:
    """The lines of a file split at LF only, read a few megabytes at a time."""
    for piece in file_chunks(fh):
        lines = piece.decode("utf-8", "surrogateescape").split("\n")
        if piece.endswith(b"\n"):
            lines.pop()
        yield from lines


def _body_size(bodies: list[_Source]) -> int:
    """Bytes of the files that hold body patterns (0 when one cannot be read)."""
    try:
        return sum(s.path.stat().st_size for s in bodies if s.ext in BODY_EXTS | cvd.CONTAINER_EXTS)
    except OSError:
        return 0  # the parse reports the missing file


def _start_matcher(
    kind: str, builder: TableBuilder, plan: HyperscanPlan | None
) -> Callable[[], Matcher]:
    if plan is not None:
        return HyperscanMatcher.start_plan(plan)
    patterns = builder.patterns()
    return lambda: AhoMatcher(patterns)


def _from_cache(
    cached: tuple[dict[str, Any], list[memoryview]], kind: str
) -> tuple[Tables, Matcher, dict[str, Any]] | None:
    meta, blobs = cached
    try:
        tables = from_parts(meta["tables"], blobs)
        info = meta["report"]
        matcher: Matcher
        if kind == "hyperscan":
            dbs = {(int(t), int(n)): bytes(blobs[int(i)]) for t, n, i in meta["matcher"]["blobs"]}
            confirm = bytes(blobs[int(meta["matcher"]["confirm"])])
            if confirm and len(confirm) != len(tables.p.flags):
                raise ValueError("cached matcher does not fit the tables")
            matcher = HyperscanMatcher.load(
                dbs, [int(i) for i in meta["matcher"]["re_only"]], confirm
            )
        else:
            matcher = AhoMatcher(tables.patterns)
    except Exception:  # any damage means "rebuild", never "trust"
        return None
    return tables, matcher, info


def load_signatures(
    paths: Sequence[Path],
    *,
    bundled: bool = True,
    cache_dir: Path | None = None,
    matcher: MatcherKind = "auto",
) -> SignatureSet:
    """Load databases from ``paths`` (files or directories) plus the bundled set."""
    started = time.monotonic()
    kind = _choose(matcher)
    sources, pre_skipped = _collect([Path(p) for p in paths], bundled)
    key = _cache_key(sources, kind)
    files = tuple(str(s.path) for s in sources)
    if cache_dir is not None:
        cached = read_cache(cache_dir, key)
        restored = _from_cache(cached, kind) if cached is not None else None
        if restored is not None:
            tables, built, info = restored
            report = LoadReport(
                files=files,
                counts={str(k): int(v) for k, v in info["counts"].items()},
                skipped={str(k): int(v) for k, v in info["skipped"].items()},
                digest=key,
                version=str(info["version"]),
                seconds=time.monotonic() - started,
                from_cache=True,
                matcher=kind,
            )
            return SignatureSet(tables, built, report)

    bodies = [s for s in sources if s.ext not in _NO_PATTERNS]
    big = _body_size(bodies) >= PRECOMPILE_FROM
    # Hyperscan's entries are chosen as the parser adds each pattern; for a big
    # set a compile child starts now, so it is ready when they are
    plan = HyperscanPlan(prewarm=big) if kind == "hyperscan" else None
    builder = TableBuilder(keep_atoms=kind == "aho", on_pattern=plan.add if plan else None)
    parser = DatabaseParser(builder)
    parser.skipped.update(pre_skipped)
    # body patterns first, so the matcher compiles while the hash lists parse
    with_patterns = [(s.path, s.ext) for s in bodies if s.ext in BODY_EXTS | cvd.CONTAINER_EXTS]
    parser.precompiled = precompile.start(with_patterns) if big else None
    try:
        versions = _parse_all(bodies, parser)
    except BaseException:
        if plan is not None:
            plan.close()
        raise
    finally:
        if parser.precompiled is not None:
            parser.precompiled.close()
            parser.precompiled = None
    finish = _start_matcher(kind, builder, plan)
    try:
        _parse_all([s for s in sources if s.ext in _NO_PATTERNS], parser)
        tables = builder.build()
    except BaseException:
        if isinstance(finish, PendingMatcher):
            finish.abort()  # no compile child outlives a failed load
        raise
    built = finish()
    extra: dict[str, int] = {}
    if isinstance(built, HyperscanMatcher) and built.re_only:
        extra["patterns left to re"] = len(built.re_only)
    info = {
        "counts": dict(parser.counts),
        "skipped": dict(parser.skipped),
        "version": ",".join(versions),
    }
    if cache_dir is not None:
        meta, blobs = to_parts(tables)
        full: dict[str, Any] = {"tables": meta, "report": info}
        if isinstance(built, HyperscanMatcher):
            dbs: list[list[int]] = []
            for (target, part), blob in built.dump().items():
                blobs.append(blob)
                dbs.append([target, part, len(blobs) - 1])
            blobs.append(built.confirm)
            full["matcher"] = {
                "blobs": dbs,
                "confirm": len(blobs) - 1,
                "re_only": list(built.re_only),
            }
        try:
            write_cache(cache_dir, key, full, blobs)
        except OSError:
            extra["cache write failed"] = 1
    report = LoadReport(
        files=files,
        counts=info["counts"],
        skipped=info["skipped"],
        digest=key,
        version=info["version"],
        seconds=time.monotonic() - started,
        from_cache=False,
        matcher=kind,
        extra=extra,
    )
    return SignatureSet(tables, built, report)
