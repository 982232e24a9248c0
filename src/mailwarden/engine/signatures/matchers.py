"""Multi-pattern candidate finders: Hyperscan, and an Aho-Corasick fallback.

A matcher answers one question for a buffer: which body patterns *may* match,
and where the first match ends (``-1`` when it cannot tell).  The signature
set then confirms each candidate that needs it (offsets, counts, inexact
Hyperscan forms) with the pattern's pieces (module ``confirm``), so both
matchers give the same final answers; they differ only in speed.

* :class:`HyperscanMatcher` compiles the patterns of each ClamAV target
  type into one block-mode database (DOTALL, SINGLEMATCH; CASELESS for
  ``i``; PREFILTER for inexact forms; targets with fewer than
  :data:`SEPARATE_FROM` entries join target 0's) and scans a buffer with
  the databases of the targets that apply to it (target 0 and its own type),
  as clamd
  keeps one matcher per type: a PE file never meets the HTML patterns, and
  at ClamAV's size, where the scan slows as the database outgrows the CPU
  caches, the smaller databases scan faster.  A pattern with gaps whose
  literal atoms are all at least :data:`MIN_HS_ATOM` bytes is compiled as
  those atoms only: literals compile about a hundred times faster than
  patterns with gaps, and such a candidate (reported with end ``-1``, see
  :attr:`HyperscanMatcher.confirm`) is confirmed like any inexact form.  A
  pattern Hyperscan refuses is found by bisection and left to confirmation
  alone (``re_only``), never dropped.  Groups of :data:`CHILD_COMPILE_FROM`
  patterns or more compile in child interpreters, side by side (the
  script ``hs_compile``, patterns over a pipe), so the compiler's peak
  memory is returned to the system when they exit; a loader expecting a big
  set starts one in advance (:class:`HyperscanPlan`).  The compiled databases serialise
  with :meth:`HyperscanMatcher.dump` for the cache.
* :class:`AhoMatcher` (pyahocorasick) looks for each pattern's literal atoms
  and reports every pattern with an atom present; patterns whose atoms are
  all shorter than :data:`MIN_ATOM` are always candidates.  It is the
  fallback where Hyperscan is not available (non-x86 machines).

SECURITY: patterns come from signature databases; data is hostile.  Both
matchers scan in time linear in the data (Hyperscan by construction; the
Aho-Corasick walk per occurrence of an atom of at least :data:`MIN_ATOM`
bytes).  Each candidate then costs one confirmation per buffer, linear in
the buffer per pattern piece (see ``confirm``): a payload carrying the atoms
of many patterns makes that many confirmations, which the atom length keeps
rare in ordinary data.  Hyperscan scratch space is per thread and
database; worker processes that fork after loading each get their own copy.
"""

from __future__ import annotations

import contextlib
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Protocol

from mailwarden.engine.objects import Buffer
from mailwarden.engine.signatures import hs_compile
from mailwarden.engine.signatures.hexsig import escape_literal
from mailwarden.engine.signatures.tables import Pattern
from mailwarden.engine.signatures.targets import ANY_TARGET
from mailwarden.errors import SignatureError

#: Atoms shorter than this would fire on almost every buffer.
MIN_ATOM = 3
#: Patterns with gaps are looked for by their atoms when all are at least this long.
MIN_HS_ATOM = 6
#: Pattern sets at least this large are compiled in a child process.
CHILD_COMPILE_FROM = 5000
#: Targets with fewer entries than this share the target-0 database.
SEPARATE_FROM = 5000
#: A target with more entries than this is compiled as several databases of
#: at most this many.  At ClamAV's size two halves scan as fast as the whole
#: (each fits the CPU caches better) and compile side by side in half the time;
#: at the default size a second database would only add a scan.
MAX_DB_ENTRIES = 100_000

#: A database's key: (target type, part of that target's entries)
DbKey = tuple[int, int]


class Matcher(Protocol):
    name: str

    def candidates(self, data: Buffer, targets: Collection[int] | None = None) -> dict[int, int]:
        """Pattern id -> end offset of its first reported match (-1: unknown).

        ``targets``: the target types that apply to the buffer; a matcher may
        leave out patterns of other targets (None: every pattern).
        """
        ...


def hyperscan_available() -> bool:
    try:
        import hyperscan  # noqa: F401
    except ImportError:
        return False
    return True


class HyperscanMatcher:
    name = "hyperscan"

    def __init__(
        self, dbs: Mapping[DbKey, Any], re_only: Sequence[int], confirm: bytes = b""
    ) -> None:
        import hyperscan

        self._hs = hyperscan
        #: (target type, part) -> a database of patterns with that target
        self._dbs = dict(sorted(dbs.items()))
        self.re_only = tuple(re_only)
        #: one byte per pattern: 1 when Hyperscan looks for its atoms only
        self.confirm = confirm
        self._local = threading.local()

    @classmethod
    def build(cls, patterns: Sequence[Pattern]) -> HyperscanMatcher:
        return cls.start(patterns)()

    @classmethod
    def start(cls, patterns: Sequence[Pattern]) -> Callable[[], HyperscanMatcher]:
        """Begin building; the returned function finishes and returns the matcher.

        One database per target type, as ClamAV keeps one matcher per type: a
        buffer meets only the patterns that apply to it, and the databases
        compile side by side.  A group of :data:`CHILD_COMPILE_FROM` entries
        or more starts compiling in a child process at once, so the caller
        can do other work (parse the hash databases) meanwhile.
        """
        plan = HyperscanPlan()
        for pid, p in enumerate(patterns):
            plan.add(pid, p, p.target)
        return cls.start_plan(plan)

    @classmethod
    def start_plan(cls, plan: HyperscanPlan) -> PendingMatcher:
        """:meth:`start` for entries collected while the patterns were added."""
        groups = plan.groups
        flags_per_pattern = bytes(plan.confirm)
        for target in [t for t in groups if t != ANY_TARGET]:
            if len(groups[target]) < SEPARATE_FROM:
                # a small group costs a second scan for little: the signature
                # set drops the other targets' candidates anyway
                groups.setdefault(ANY_TARGET, []).extend(groups.pop(target))
        parts = _parts(groups)
        # Hyperscan's compiler needs several times the final database size; in
        # a child process that heap goes away instead of staying in the daemon
        big = sorted(
            (key for key, entries in parts.items() if len(entries) >= CHILD_COMPILE_FROM),
            key=lambda key: -len(parts[key]),
        )
        # every child starts before any is sent its entries, so they start side
        # by side; a child started in advance takes the biggest part
        children = {key: plan.take_child() or _spawn() for key in big}
        plan.close()
        for key, proc in children.items():
            _send(proc, parts[key])
        here = {
            key: hs_compile.compile_to_bytes(entries)
            for key, entries in parts.items()
            if entries and key not in children
        }

        def finish() -> HyperscanMatcher:
            done = here | {key: _finish_child(proc) for key, proc in children.items()}
            rejected = sorted(pid for _, refused in done.values() for pid in refused)
            blobs = {key: blob for key, (blob, _) in done.items()}
            return cls.load(blobs, rejected, flags_per_pattern)

        return PendingMatcher(finish, list(children.values()))

    def dump(self) -> dict[DbKey, bytes]:
        """Each database, serialised, by (target type, part)."""
        return {key: bytes(self._hs.dumpb(db)) for key, db in self._dbs.items()}

    @classmethod
    def load(
        cls, blobs: Mapping[DbKey, bytes], re_only: Sequence[int], confirm: bytes = b""
    ) -> HyperscanMatcher:
        import hyperscan

        dbs = {
            key: hyperscan.loadb(blob, hyperscan.HS_MODE_BLOCK)
            for key, blob in blobs.items()
            if blob
        }
        return cls(dbs, re_only, confirm)

    def _scratch(self, key: DbKey) -> Any:
        scratches: dict[DbKey, Any] | None = getattr(self._local, "scratches", None)
        if scratches is None:
            scratches = self._local.scratches = {}
        scratch = scratches.get(key)
        if scratch is None:
            scratch = scratches[key] = self._hs.Scratch(self._dbs[key])
        return scratch

    def candidates(self, data: Buffer, targets: Collection[int] | None = None) -> dict[int, int]:
        found: dict[int, int] = dict.fromkeys(self.re_only, -1)
        if not self._dbs or len(data) == 0:
            return found

        confirm = self.confirm

        def on_match(pid: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            if pid not in found:
                # an atom's end is not the pattern's: the signature set finds that
                found[pid] = -1 if confirm and confirm[pid] else end

        for key, db in self._dbs.items():
            if targets is None or key[0] in targets:
                db.scan(data, match_event_handler=on_match, scratch=self._scratch(key))
        return found


class PendingMatcher:
    """A matcher whose databases are compiling: call it for the matcher, or abort."""

    def __init__(
        self, finish: Callable[[], HyperscanMatcher], children: list[subprocess.Popen[bytes]]
    ) -> None:
        self._finish = finish
        self._children = children

    def __call__(self) -> HyperscanMatcher:
        return self._finish()

    def abort(self) -> None:
        """Stop the compile children (the load failed after they started)."""
        for proc in self._children:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.communicate()


class _PatternText(Protocol):
    """What choosing a pattern's Hyperscan entries needs (a Pattern or a compiled one)."""

    @property
    def regex(self) -> bytes: ...
    @property
    def hs(self) -> bytes: ...
    @property
    def exact(self) -> bool: ...
    @property
    def caseless(self) -> bool: ...
    @property
    def atoms(self) -> tuple[bytes, ...]: ...


class HyperscanPlan:
    """The Hyperscan entries of each target, collected one pattern at a time.

    The loader adds each new pattern as the parser registers it, so starting
    the compile needs no second pass over the patterns.  Pattern ids must
    come in order from 0.
    """

    def __init__(self, *, prewarm: bool = False) -> None:
        import hyperscan

        #: a compile child started in advance (a big set is coming)
        self._warm: subprocess.Popen[bytes] | None = _spawn() if prewarm else None
        self._base = hyperscan.HS_FLAG_DOTALL | hyperscan.HS_FLAG_SINGLEMATCH
        self._caseless = hyperscan.HS_FLAG_CASELESS
        self._prefilter = hyperscan.HS_FLAG_PREFILTER
        #: target type -> (expression, pattern id, flags)
        self.groups: dict[int, list[hs_compile.Entry]] = {}
        #: one byte per pattern: 1 when Hyperscan looks for its atoms only
        self.confirm = bytearray()

    def take_child(self) -> subprocess.Popen[bytes] | None:
        """The compile child started in advance, once."""
        proc, self._warm = self._warm, None
        return proc

    def close(self) -> None:
        """End the child started in advance if nothing took it."""
        proc = self.take_child()
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.communicate()

    def add(self, pid: int, p: _PatternText, target: int) -> None:
        if pid != len(self.confirm):
            raise ValueError("patterns must be added in id order")
        entries = self.groups.setdefault(target, [])
        flags = self._base | (self._caseless if p.caseless else 0)
        if _by_atoms(p):
            # a literal compiles a hundred times faster than a pattern with gaps
            self.confirm.append(1)
            entries.extend((escape_literal(atom), pid, flags) for atom in p.atoms)
            return
        self.confirm.append(0)
        if not p.exact:
            flags |= self._prefilter
        entries.append((p.hs or p.regex, pid, flags))


def _parts(groups: Mapping[int, list[hs_compile.Entry]]) -> dict[DbKey, list[hs_compile.Entry]]:
    """Each target's entries cut into parts of at most :data:`MAX_DB_ENTRIES`."""
    parts: dict[DbKey, list[hs_compile.Entry]] = {}
    for target, entries in groups.items():
        count = -(-len(entries) // MAX_DB_ENTRIES) or 1
        size = -(-len(entries) // count) or 1
        for part in range(count):
            parts[(target, part)] = entries[part * size : (part + 1) * size]
    return parts


def _by_atoms(p: _PatternText) -> bool:
    """Whether to look for the pattern's literal atoms instead of the pattern.

    Not for plain literals (already the fast kind) and not when an atom is
    shorter than :data:`MIN_HS_ATOM` (it would fire too often).
    """
    if not p.atoms or min(len(a) for a in p.atoms) < MIN_HS_ATOM:
        return False
    plain = len(p.atoms) == 1 and not p.hs and len(p.regex) == 4 * len(p.atoms[0])
    return not plain


def _spawn() -> subprocess.Popen[bytes]:
    """A compile child, waiting for its entries (see ``hs_compile``)."""
    # run by path with -P: the child imports only the standard library and
    # Hyperscan, not this package, so it is ready in a few hundredths of a second
    return subprocess.Popen(
        [sys.executable, "-P", hs_compile.__file__],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _send(proc: subprocess.Popen[bytes], entries: list[hs_compile.Entry]) -> None:
    stdin, proc.stdin = proc.stdin, None  # communicate() must not touch it again
    if stdin is None:  # pragma: no cover - Popen with PIPE always has one
        raise SignatureError("Hyperscan compile: no pipe to the child")
    # the child reads everything before it compiles: this returns once it has
    with contextlib.suppress(BrokenPipeError):  # it died at once: _finish_child says how
        stdin.write(hs_compile.encode_entries(entries))
    with contextlib.suppress(BrokenPipeError):
        stdin.close()


def _finish_child(proc: subprocess.Popen[bytes]) -> tuple[bytes, list[int]]:
    stdout, stderr = proc.communicate()
    if proc.returncode != 0 or len(stdout) < 4:
        detail = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise SignatureError(f"Hyperscan compile failed (exit {proc.returncode}): {detail[0]}")
    (count,) = struct.unpack(">I", stdout[:4])
    rejected = list(struct.unpack(f">{count}I", stdout[4 : 4 + 4 * count]))
    return stdout[4 + 4 * count :], rejected


class AhoMatcher:
    name = "aho"

    def __init__(self, patterns: Sequence[Pattern]) -> None:
        import ahocorasick

        always: list[int] = []
        exact_keys: dict[str, list[int]] = {}
        fold_keys: dict[str, list[int]] = {}
        for pid, p in enumerate(patterns):
            if not p.atoms or min(len(a) for a in p.atoms) < MIN_ATOM:
                always.append(pid)
                continue
            keys = fold_keys if p.caseless else exact_keys
            for atom in p.atoms:
                keys.setdefault(atom.decode("latin-1"), []).append(pid)
        self.always = tuple(always)
        self._exact = _automaton(ahocorasick, exact_keys)
        self._fold = _automaton(ahocorasick, fold_keys)

    def candidates(self, data: Buffer, targets: Collection[int] | None = None) -> dict[int, int]:
        # one automaton for every target: the signature set drops other targets
        found: dict[int, int] = dict.fromkeys(self.always, -1)
        if len(data) == 0:
            return {}
        raw = bytes(data)
        for automaton, haystack in (
            (self._exact, raw),
            (self._fold, raw.lower() if self._fold else b""),
        ):
            if automaton is None:
                continue
            seen: set[str] = set()
            for _end, (key, pids) in automaton.iter(haystack.decode("latin-1")):
                if key in seen:
                    continue
                seen.add(key)
                for pid in pids:
                    found.setdefault(pid, -1)
        return found


def _automaton(ahocorasick: Any, keys: dict[str, list[int]]) -> Any:
    if not keys:
        return None
    automaton = ahocorasick.Automaton()
    for key, pids in keys.items():
        automaton.add_word(key, (key, tuple(pids)))
    automaton.make_automaton()
    return automaton
