"""A loaded signature set and how it matches one payload.

:meth:`SignatureSet.match` is what the engine calls for every scan object.  For
one payload it checks, in clamd's order:

1. the ``.fp``/``.sfp`` allowlist: a listed payload has no findings at all;
2. whole-payload hash signatures, then PE section hashes (``.mdb/.msb``);
3. per view (raw bytes, then the normalised views of text and HTML, see
   ``normalize``): body signatures ordered by where their first match ends,
   then logical signatures in load order.

Only a payload whose size some hash signature has is hashed.  Candidates from
the matcher are confirmed (``confirm``) when Hyperscan's answer is not final:
an offset window, a match count for a logical expression, a pattern looked
for by its atoms, or an inexact (prefilter) Hyperscan form.

SECURITY: the data is hostile; confirmation takes time linear in the buffer
per pattern piece (``confirm``), starts inside the offset window where one is
given and stops after the number of matches a logical expression can use.
Signature names are database text and are returned as they are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from mailwarden.engine.filetype import FileKind
from mailwarden.engine.objects import Buffer
from mailwarden.engine.signatures.confirm import Chain, Meter, compile_plan, confirm
from mailwarden.engine.signatures.logic import evaluate
from mailwarden.engine.signatures.matchers import Matcher
from mailwarden.engine.signatures.normalize import views
from mailwarden.engine.signatures.offsets import ANY
from mailwarden.engine.signatures.pe import pe_sections
from mailwarden.engine.signatures.tables import CASELESS, EXACT, FILE, SECTION, LogicalSig, Tables
from mailwarden.engine.signatures.targets import targets_for

ENGINE = "clamav"
#: Candidates confirmed between two calls of ``check_time``.
_CHECK_TIME_EVERY = 16
_HASHERS: dict[int, Callable[[Buffer], bytes]] = {
    16: lambda d: hashlib.md5(d, usedforsecurity=False).digest(),
    20: lambda d: hashlib.sha1(d, usedforsecurity=False).digest(),
    32: lambda d: hashlib.sha256(d).digest(),
}


@dataclass(frozen=True, slots=True)
class SigMatch:
    """One signature hit.  ``official`` is False for unsigned databases, whose
    names clamd reports with a ``.UNOFFICIAL`` suffix."""

    name: str
    engine: str
    official: bool

    @property
    def clamd_name(self) -> str:
        return self.name if self.official else f"{self.name}.UNOFFICIAL"


@dataclass(frozen=True)
class LoadReport:
    files: tuple[str, ...]
    #: loaded signatures per kind: "hdb", "ndb", "ldb", ...
    counts: dict[str, int]
    #: signatures and files we could not support, per reason
    skipped: dict[str, int]
    digest: str
    version: str
    seconds: float
    from_cache: bool
    matcher: str = "hyperscan"
    extra: dict[str, int] = field(default_factory=dict)


class _Digests:
    """Digests of one buffer, computed once each and only when asked."""

    def __init__(self, data: Buffer) -> None:
        self._data = data
        self._done: dict[int, bytes] = {}

    def get(self, length: int) -> bytes:
        digest = self._done.get(length)
        if digest is None:
            digest = self._done[length] = _HASHERS[length](self._data)
        return digest


class SignatureSet:
    """Compiled ClamAV signatures; build with ``load_signatures``."""

    def __init__(self, tables: Tables, matcher: Matcher, report: LoadReport) -> None:
        self.report = report
        self._t = tables
        self._matcher = matcher
        self._plans: dict[int, tuple[Chain, ...]] = {}
        #: work done confirming candidates (see ``confirm``), for tests and benchmarks
        self.confirm_meter = Meter()

    @property
    def signature_count(self) -> int:
        return sum(self.report.counts.get(k, 0) for k in ("hdb", "hsb", "mdb", "msb", "ndb", "ldb"))

    @property
    def matcher_name(self) -> str:
        return self._matcher.name

    # -- public ---------------------------------------------------------------

    def match(
        self,
        data: Buffer,
        kind: FileKind,
        *,
        container: str | None = None,
        all_matches: bool = False,
        check_time: Callable[[], None] | None = None,
    ) -> list[SigMatch]:
        """Signature hits for one payload, clamd's first hit first; see the module docstring.

        ``check_time`` is called now and then while candidates are confirmed
        (the walker's ``Budget.check_time``): a payload crafted to make many
        patterns candidates stops at the scan time limit instead of running on.
        """
        size = len(data)
        digests = _Digests(data)
        if self._allowlisted(digests, size):
            return []
        out: list[SigMatch] = []
        seen: set[str] = set()

        def add(hit: SigMatch) -> bool:
            if hit.name not in seen:
                seen.add(hit.name)
                out.append(hit)
            return bool(out) and not all_matches

        for hit in self._hash_hits(data, digests, size, kind):
            if add(hit):
                return out
        for view, buf in views(data, kind, self._t.targets):
            hits = self._body_hits(buf, targets_for(kind, view), size, container, check_time)
            for hit in hits:
                if add(hit):
                    return out
        return out

    # -- hashes ---------------------------------------------------------------

    def _allowlisted(self, digests: _Digests, size: int) -> bool:
        for length, index in self._t.allow.items():
            if index.wants_size(size) and index.lookup(digests.get(length), size) is not None:
                return True
        return False

    def _hash_hits(
        self, data: Buffer, digests: _Digests, size: int, kind: FileKind
    ) -> list[SigMatch]:
        whole: list[SigMatch] = []
        parts: list[SigMatch] = []
        sections: list[tuple[int, int]] | None = None
        for (domain, length, official), index in self._t.hashes.items():
            if domain == FILE:
                if index.wants_size(size):
                    name = index.lookup(digests.get(length), size)
                    if name is not None:
                        whole.append(SigMatch(name, ENGINE, official))
            elif domain == SECTION and kind == FileKind.PE:
                if sections is None:
                    sections = pe_sections(data)
                for off, sz in sections:
                    if index.wants_size(sz):
                        name = index.lookup(_HASHERS[length](data[off : off + sz]), sz)
                        if name is not None:
                            parts.append(SigMatch(name, ENGINE, official))
        # whole-payload hashes before section hashes, as clamd checks them
        return whole + parts

    # -- bodies ---------------------------------------------------------------

    def _chains(self, pid: int) -> tuple[Chain, ...]:
        chains = self._plans.get(pid)
        if chains is None:
            p = self._t.p
            chains = compile_plan(p.plan[pid], p.regex[pid], bool(p.flags[pid] & CASELESS))
            self._plans[pid] = chains
        return chains

    def _confirm(self, pid: int, buf: Buffer, reported_end: int, cap: int) -> tuple[int, int]:
        """(match count up to ``cap``, end of the first match); count 0 if none."""
        p = self._t.p
        if p.okind[pid] == ANY:
            if cap <= 1 and reported_end >= 0 and p.flags[pid] & EXACT:
                return 1, reported_end
            window = (0, len(buf))
        else:
            bounded = self._t.offset(pid).window(len(buf))
            if bounded is None:
                return 0, -1
            window = bounded
        return confirm(self._chains(pid), buf, window, cap, self.confirm_meter)

    def _body_hits(
        self,
        buf: Buffer,
        targets: frozenset[int],
        size: int,
        container: str | None,
        check_time: Callable[[], None] | None,
    ) -> list[SigMatch]:
        t = self._t
        target_of = t.p.target
        bodies: list[tuple[int, int, SigMatch]] = []
        counts: dict[int, list[int]] = {}
        for n, (pid, end) in enumerate(self._matcher.candidates(buf, targets).items()):
            if target_of[pid] not in targets:
                continue
            if check_time is not None and n % _CHECK_TIME_EVERY == 0:
                check_time()
            count, first_end = self._confirm(pid, buf, end, t.count_of.get(pid, 1))
            if not count:
                continue
            for bi in t.bodies_of(pid):
                sig = t.body(bi)
                bodies.append((first_end, bi, SigMatch(sig.name, ENGINE, sig.official)))
            for li, si in t.logical_of.get(pid, ()):
                per_sub = counts.get(li)
                if per_sub is None:
                    per_sub = counts[li] = [0] * len(t.logicals[li].patterns)
                per_sub[si] = count
        bodies.sort(key=lambda b: (b[0], b[1]))
        hits = [b[2] for b in bodies]
        for li in sorted(counts):
            lsig = t.logicals[li]
            if _conditions_hold(lsig, size, container) and evaluate(lsig.expr, counts[li]):
                hits.append(SigMatch(lsig.name, ENGINE, lsig.official))
        return hits


def _conditions_hold(sig: LogicalSig, size: int, container: str | None) -> bool:
    if sig.filesize is not None and not sig.filesize[0] <= size <= sig.filesize[1]:
        return False
    if sig.container is None:
        return True
    if sig.container == "":
        return container is None
    return container == sig.container
