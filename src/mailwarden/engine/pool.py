"""Scan many messages on every core: worker processes forked after the engine loads.

Usage::

    with ScanPool(engine, workers=0) as pool:      # 0 = one per core
        for key, verdict in pool.scan((key, job) for ...):  # submission order
            ...

A job is a path (the worker maps or reads the file itself) or raw bytes (an
mbox message or stdin).  Workers are forked from the process that loaded the
engine, so they share the compiled database's pages copy-on-write instead of
loading it again; with one worker, everything runs in-process.

SECURITY: workers inherit the parent's privileges and open only the paths they
are given; they never write files.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, TypeVar

from mailwarden.engine.scanner import Engine
from mailwarden.verdict import Status, Verdict

Job = str | bytes
K = TypeVar("K")

_ENGINE: Engine | None = None


def _init(engine: Engine) -> None:
    global _ENGINE  # noqa: PLW0603 - the per-process engine handed over by fork
    _ENGINE = engine


def _scan_one(job: Job, engine: Engine | None = None) -> dict[str, Any]:
    eng = engine or _ENGINE
    if eng is None:  # pragma: no cover - only if called outside a pool worker
        raise RuntimeError("no engine in this process")
    try:
        verdict = eng.scan_file(job) if isinstance(job, str) else eng.scan_bytes(job)
    except OSError as exc:
        verdict = Verdict(Status.ERROR, reason=f"cannot read: {exc.strerror or exc}")
    return verdict.to_dict()


class ScanPool:
    def __init__(self, engine: Engine, workers: int = 0) -> None:
        self.engine = engine
        self.workers = workers or os.cpu_count() or 1
        self._pool: Any = None
        if self.workers > 1:
            ctx = multiprocessing.get_context("fork")
            self._pool = ctx.Pool(self.workers, initializer=_init, initargs=(engine,))

    def scan(self, jobs: Iterable[tuple[K, Job]]) -> Iterator[tuple[K, Verdict]]:
        """Scan ``(key, job)`` pairs; yield ``(key, verdict)`` in the same order."""
        if self._pool is None:
            for key, job in jobs:
                yield key, Verdict.from_dict(_scan_one(job, self.engine))
            return
        keys: collections.deque[K] = collections.deque()

        def feed() -> Iterator[Job]:
            for key, job in jobs:
                keys.append(key)
                yield job

        for result in self._pool.imap(_scan_one, feed(), chunksize=4):
            yield keys.popleft(), Verdict.from_dict(result)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None

    def __enter__(self) -> ScanPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and self._pool is not None:
            self._pool.terminate()
            self._pool = None
        self.close()
