"""Confirm a body-pattern candidate on one buffer, in time linear in the buffer.

The matchers only say which patterns *may* match.  :func:`confirm` decides:
how many times a pattern matches (up to the count a logical signature can
use) and where its first match ends, which orders the findings.

A pattern is checked as ClamAV's matcher checks it: cut at its gap ranges
(``*``, ``{n-}``, ``{n-m}``, ``[n-m]``) into pieces, each piece found at its
own positions, and a piece counts only when the previous one ended the right
distance before it.  The pieces come from :attr:`CompiledPattern.plan
<mailwarden.engine.signatures.hexsig.CompiledPattern>`, a text of lines (one
per chain: the ASCII and the wide form of an ``::a`` subsignature are two)
with tab-separated fields::

    lead  piece  gap  piece  ...  piece  trail

A gap is ``lo-hi`` or ``lo-`` (no upper bound); ``lead`` is allowed before
the first piece (counted from the offset window), ``trail`` must follow the
last one.  A piece is ``minwidth,maxwidth,regex``: Python ``re`` text with
no gap range, so matching it at one position costs its width.  A pattern
whose plan is empty is a single piece, its ``regex``.

Semantics, kept equal to clamd's:

* a match starts inside the offset window (the first piece, after ``lead``);
* a piece after an open gap (``*``, ``{n-}``) is looked for after the
  earliest end of the previous piece (the earliest end leaves it the most
  room, so nothing is missed); after a bounded gap, after each end of the
  previous piece, within the gap's distance;
* the count is the number of positions where the *last* piece completes a
  chain (clamd counts a subsignature each time its last part matches);
  the first end is that of the first such completion.

Every stage walks the buffer forwards only: a search for a piece resumes
after the previous occurrence, and the answer of a search that ran past the
region asked about is kept for the next question.  So each piece costs at
most one pass over the buffer plus the matches it reports, whatever the
payload (a payload made of the first piece repeated a million times
included).  :class:`Meter` counts positions examined, so tests can bound the
work without timing it.

SECURITY: the buffer is hostile, the plan comes from a database.  Time is
linear in the buffer per piece; memory is constant per stage except a heap
that reorders the ends of a variable-width piece (at most one entry per
occurrence inside that piece's width).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass

from mailwarden.engine.objects import Buffer

#: Below this many candidate starts, a region is tried position by position.
WINDOW_STEPS = 64

_Occurrence = tuple[int, int]


class Meter:
    """Work done by confirmations: positions examined and searches started.

    Updated without a lock: with several threads it is an estimate.
    """

    __slots__ = ("positions", "searches")

    def __init__(self) -> None:
        self.positions = 0
        self.searches = 0


@dataclass(frozen=True, slots=True)
class Chain:
    """One line of a plan, compiled."""

    lead: tuple[int, int | None]
    pieces: tuple[re.Pattern[bytes], ...]
    widths: tuple[tuple[int, int], ...]
    #: gaps[i] lies between pieces[i] and pieces[i + 1]
    gaps: tuple[tuple[int, int | None], ...]
    trail: int


def _gap(text: bytes) -> tuple[int, int | None]:
    lo, _, hi = text.partition(b"-")
    return int(lo), (int(hi) if hi else None)


def compile_plan(plan: bytes, regex: bytes, caseless: bool) -> tuple[Chain, ...]:
    """Chains of a plan; a pattern with an empty plan is the single piece ``regex``."""
    flags = re.DOTALL | (re.IGNORECASE if caseless else 0)
    if not plan:
        return (Chain((0, 0), (re.compile(regex, flags),), ((0, 0),), (), 0),)
    chains: list[Chain] = []
    for line in plan.split(b"\n"):
        fields = line.split(b"\t")
        if len(fields) < 3 or len(fields) % 2 == 0:
            raise ValueError("malformed pattern plan")
        pieces, widths = [], []
        for field in fields[1:-1:2]:
            lo, hi, text = field.split(b",", 2)
            pieces.append(re.compile(text, flags))
            widths.append((int(lo), int(hi)))
        chains.append(
            Chain(
                _gap(fields[0]),
                tuple(pieces),
                tuple(widths),
                tuple(_gap(g) for g in fields[2:-1:2]),
                _gap(fields[-1])[0],
            )
        )
    return tuple(chains)


class _Finder:
    """Occurrences of one piece, asked for at non-decreasing positions."""

    __slots__ = ("_asked", "_buf", "_found", "_meter", "_rx", "_size")

    def __init__(self, rx: re.Pattern[bytes], buf: Buffer, meter: Meter) -> None:
        self._rx = rx
        self._buf = buf
        self._size = len(buf)
        self._meter = meter
        #: the last search started at ``_asked`` and found ``_found`` (None: nothing after)
        self._asked = -1
        self._found: _Occurrence | None = None

    def none_from(self, pos: int) -> bool:
        """Whether a search already showed there is no occurrence at or after ``pos``."""
        return self._found is None and 0 <= self._asked <= pos

    def first_in(self, pos: int, last: int) -> _Occurrence | None:
        """The first occurrence starting in ``[pos, last]``, or None."""
        last = min(last, self._size)
        if pos > last:
            return None
        found = self._found
        if 0 <= self._asked <= pos and (found is None or found[0] >= pos):
            return found if found is not None and found[0] <= last else None
        meter = self._meter
        if last - pos < WINDOW_STEPS:
            # a short region: try it in place instead of searching past it
            match = self._rx.match
            for start in range(pos, last + 1):
                m = match(self._buf, start)
                if m is not None:
                    meter.positions += start - pos + 1
                    return start, m.end()
            meter.positions += last - pos + 1
            return None
        meter.searches += 1
        m = self._rx.search(self._buf, pos)
        self._asked = pos
        if m is None:
            meter.positions += self._size - pos + 1
            self._found = None
            return None
        meter.positions += m.start() - pos + 1
        self._found = m.start(), m.end()
        return self._found if m.start() <= last else None


def _within(finder: _Finder, first: int, last: int) -> Iterator[_Occurrence]:
    """Every occurrence starting in ``[first, last]``, in order."""
    pos = first
    while True:
        occ = finder.first_in(pos, last)
        if occ is None:
            return
        yield occ
        pos = occ[0] + 1


def _after_each(ends: Iterator[int], finder: _Finder, lo: int, hi: int) -> Iterator[_Occurrence]:
    """Occurrences starting ``lo`` to ``hi`` bytes after one of ``ends`` (sorted)."""
    pos = -1
    for end in ends:
        pos = max(pos, end + lo)
        while True:
            occ = finder.first_in(pos, end + hi)
            if occ is None:
                break
            yield occ
            pos = occ[0] + 1
        pos = max(pos, end + hi + 1)
        if finder.none_from(pos):
            return  # no later end can help: stop pulling the previous piece


def _sorted_ends(occurrences: Iterator[_Occurrence], width: tuple[int, int]) -> Iterator[int]:
    """Ends of occurrences (given by start) in increasing order."""
    shortest, longest = width
    if shortest == longest:
        for _, end in occurrences:
            yield end
        return
    pending: list[int] = []
    for start, end in occurrences:
        heapq.heappush(pending, end)
        # a later occurrence starts after ``start``, so it ends after start + shortest
        while pending and pending[0] <= start + shortest:
            yield heapq.heappop(pending)
    while pending:
        yield heapq.heappop(pending)


def _completions(chain: Chain, buf: Buffer, window: tuple[int, int], meter: Meter) -> Iterator[int]:
    """Ends of the chain's matches, one per position where its last piece completes."""
    size = len(buf)
    lead_lo, lead_hi = chain.lead
    first, last = window
    finder = _Finder(chain.pieces[0], buf, meter)
    occurrences = _within(finder, first + lead_lo, size if lead_hi is None else last + lead_hi)
    for i, (lo, hi) in enumerate(chain.gaps):
        ends = _sorted_ends(occurrences, chain.widths[i])
        finder = _Finder(chain.pieces[i + 1], buf, meter)
        if hi is None:
            earliest = next(ends, None)
            if earliest is None:
                return
            occurrences = _within(finder, earliest + lo, size)
        else:
            occurrences = _after_each(ends, finder, lo, hi)
    for _, end in occurrences:
        if end + chain.trail > size:
            continue
        yield end + chain.trail


def _one_piece(
    chain: Chain, buf: Buffer, window: tuple[int, int], cap: int, meter: Meter
) -> tuple[int, int]:
    """:func:`confirm` for a chain without gaps: its piece's occurrences are its matches.

    The same answers and the same meter counts as the general path, without
    its layers of generators: most patterns are one piece, and a candidate
    should cost about one search, not a few microseconds of setup on top.
    """
    size = len(buf)
    rx = chain.pieces[0]
    lead_lo, lead_hi = chain.lead
    pos = window[0] + lead_lo
    last = min(size, size if lead_hi is None else window[1] + lead_hi)
    trail = chain.trail
    count, first_end = 0, -1
    while pos <= last:
        if last - pos < WINDOW_STEPS:
            # a short region: try it in place instead of searching past it
            match = rx.match
            for start in range(pos, last + 1):
                m = match(buf, start)
                if m is not None:
                    break
            else:
                meter.positions += last - pos + 1
                break
        else:
            meter.searches += 1
            m = rx.search(buf, pos)
            if m is None:
                meter.positions += size - pos + 1
                break
        start = m.start()
        meter.positions += start - pos + 1
        if start > last:
            break
        pos = start + 1
        end = m.end() + trail
        if end > size:
            continue
        if first_end < 0 or end < first_end:
            first_end = end
        count += 1
        if count >= cap:
            break
    return count, first_end


def confirm(
    chains: tuple[Chain, ...], buf: Buffer, window: tuple[int, int], cap: int, meter: Meter
) -> tuple[int, int]:
    """(match count up to ``cap``, end of the first match); count 0 if none."""
    count, first_end = 0, -1
    for chain in chains:
        # past the cap a later chain (the wide form) still gives its first end
        room = max(cap - count, 1)
        if chain.gaps:
            found, end = 0, -1
            for found, done in enumerate(_completions(chain, buf, window, meter), 1):
                if end < 0 or done < end:
                    end = done
                if found >= room:
                    break
        else:
            found, end = _one_piece(chain, buf, window, room, meter)
        if found:
            count += found
            first_end = end if first_end < 0 else min(first_end, end)
    return min(count, cap), first_end
