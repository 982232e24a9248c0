"""Confirming a candidate: the same answers as the whole pattern, in linear work.

The plan form of a pattern must accept exactly the buffers its exact regular
expression accepts; counts follow clamd (one per completion of the last
piece); and the work on a hostile payload, counted by the meter in positions
examined, grows linearly with the payload.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sig_helpers import MATCHERS, load_dbs, names

from mailwarden.engine.filetype import FileKind
from mailwarden.engine.signatures.confirm import (
    WINDOW_STEPS,
    Meter,
    _completions,
    _one_piece,
    compile_plan,
    confirm,
)
from mailwarden.engine.signatures.hexsig import compile_hexsig


def _h(text: str) -> str:
    return text.encode().hex()


def _confirm(pattern: str, data: bytes, cap: int = 1, modifiers: str = "") -> tuple[int, int]:
    c = compile_hexsig(pattern, modifiers)
    chains = compile_plan(c.plan, c.regex, c.caseless)
    return confirm(chains, data, (0, len(data)), cap, Meter())


# --- same answers as the regular expression ------------------------------------------

_GAPS = ["*", "{2-}", "{0-3}", "{1-2}", "{-2}", "{2}", "??", "[1-3]", ""]
_PIECES = ["61", "6162", "62", "(61|63)", "6?", "!(62)", "(6162|63)"]


@st.composite
def _pattern(draw: st.DrawFn) -> str:
    # a literal first piece: a pattern needs fixed bytes to load at all
    pieces = [draw(st.sampled_from(_PIECES[:3]))]
    pieces += draw(st.lists(st.sampled_from(_PIECES), max_size=3))
    out = [pieces[0]]
    for piece in pieces[1:]:
        out.append(draw(st.sampled_from(_GAPS)))
        out.append(piece)
    return "".join(out)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pattern=_pattern(),
    data=st.binary(max_size=40).map(lambda b: bytes(0x61 + x % 4 for x in b)),
    modifiers=st.sampled_from(["", "i", "f", "wa"]),
)
def test_plan_accepts_what_the_regex_accepts(pattern: str, data: bytes, modifiers: str) -> None:
    c = compile_hexsig(pattern, modifiers)
    flags = re.DOTALL | (re.IGNORECASE if c.caseless else 0)
    expected = re.search(c.regex, data, flags) is not None
    count, end = _confirm(pattern, data, modifiers=modifiers)
    assert (count > 0) == expected
    assert (end >= 0) == expected


def test_pieces_hold_no_gap_range() -> None:
    c = compile_hexsig(_h("abcd") + "*" + _h("ef") + "{3-9000}" + _h("gh") + "{5-}" + _h("ij"))
    (chain,) = compile_plan(c.plan, c.regex, False)
    assert len(chain.pieces) == 4
    assert chain.gaps == ((0, None), (3, 9000), (5, None))
    for piece in chain.pieces:
        assert not re.search(rb"\*|\{\d+,\d*\}|\+", piece.pattern)


def test_fixed_gaps_next_to_a_range_join_it() -> None:
    c = compile_hexsig(_h("ab") + "??{2-4}??" + _h("cd"))
    (chain,) = compile_plan(c.plan, c.regex, False)
    assert chain.gaps == ((4, 6),)
    assert _confirm(_h("ab") + "??{2-4}??" + _h("cd"), b"ab1234cd")[0] == 1
    assert _confirm(_h("ab") + "??{2-4}??" + _h("cd"), b"ab123cd")[0] == 0


def test_a_single_piece_needs_no_plan() -> None:
    assert compile_hexsig(_h("ab") + "??" + _h("cd")).plan == b""
    assert compile_hexsig(_h("ab") + "(63|64)" + _h("cd"), "wa").plan == b""


def test_a_gap_range_inside_an_alternative_is_unsupported() -> None:
    from mailwarden.engine.signatures.offsets import UnsupportedSignature

    with pytest.raises(UnsupportedSignature, match="gap range inside an alternative"):
        compile_hexsig("(" + _h("ab") + "*" + _h("cd") + "|" + _h("ef") + ")")


_EDGES = ["", "{2-3}", "{2-}", "{-2}", "{1}"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lead=st.sampled_from(_EDGES),
    body=st.lists(st.sampled_from(["61", "6162", "62", "(61|63)", "6?", "??"]), max_size=3),
    trail=st.sampled_from([*_EDGES, "{3-}"]),
    # sizes spread evenly, so that windows past WINDOW_STEPS are common
    data=st.tuples(st.integers(0, 300), st.randoms(use_true_random=False)).map(
        lambda a: bytes(a[1].choices(b"abcd", k=a[0]))
    ),
    start=st.integers(0, 60),
    # short windows are tried in place, long ones searched
    span=st.one_of(st.integers(0, WINDOW_STEPS), st.integers(WINDOW_STEPS, 400)),
    cap=st.integers(1, 6),
    modifiers=st.sampled_from(["", "i", "f", "wa"]),
)
def test_one_piece_path_agrees_with_the_general_one(
    lead: str,
    body: list[str],
    trail: str,
    data: bytes,
    start: int,
    span: int,
    cap: int,
    modifiers: str,
) -> None:
    # the piece starts and ends with a literal byte, as a loadable pattern does
    pattern = lead + "".join(["61", *body, "62"]) + trail
    c = compile_hexsig(pattern, modifiers)
    window = (start, start + span)
    for chain in compile_plan(c.plan, c.regex, c.caseless):
        assert not chain.gaps
        general, fast = Meter(), Meter()
        ends = []
        for end in _completions(chain, data, window, general):
            ends.append(end)
            if len(ends) >= cap:
                break
        expected = (len(ends), min(ends, default=-1))
        assert _one_piece(chain, data, window, cap, fast) == expected
        assert (fast.positions, fast.searches) == (general.positions, general.searches)


# --- counts and ends as clamd has them ---------------------------------------------


def test_count_is_completions_of_the_last_piece() -> None:
    pattern = _h("AA") + "*" + _h("BB")
    assert _confirm(pattern, b"AA BB BB BB", cap=5) == (3, 5)
    assert _confirm(pattern, b"AA AA AA BB", cap=5) == (1, 11)
    assert _confirm(pattern, b"BB AA", cap=5) == (0, -1)


def test_bounded_gap_counts_each_last_piece_in_reach() -> None:
    pattern = _h("AA") + "{0-2}" + _h("BB")
    assert _confirm(pattern, b"AA BB xxxxxxxx BB AABB", cap=5) == (2, 5)


def test_count_stops_at_the_cap() -> None:
    assert _confirm(_h("AA") + "*" + _h("BB"), b"AA" + b"BB" * 50, cap=3)[0] == 3


def test_wide_and_ascii_forms_both_count() -> None:
    pattern = _h("ab") + "*" + _h("cd")
    data = b"ab cd " + "ab cd".encode("utf-16-le")
    assert _confirm(pattern, data, cap=5, modifiers="wa")[0] == 2


def test_trailing_gap_needs_its_bytes() -> None:
    pattern = _h("abc") + "{3-}"
    assert _confirm(pattern, b"abc123") == (1, 6)
    assert _confirm(pattern, b"abc12") == (0, -1)


def test_leading_gap_counts_from_the_window() -> None:
    c = compile_hexsig("{2-3}" + _h("abc"))
    chains = compile_plan(c.plan, c.regex, False)
    assert confirm(chains, b"12abc", (0, 0), 1, Meter())[0] == 1
    assert confirm(chains, b"1234abc", (0, 0), 1, Meter())[0] == 0


def test_fullword_checks_the_outer_ends() -> None:
    pattern = _h("ab") + "*" + _h("cd")
    assert _confirm(pattern, b" ab--cd ", modifiers="f")[0] == 1
    assert _confirm(pattern, b"xab--cd ", modifiers="f")[0] == 0
    assert _confirm(pattern, b" ab--cdx", modifiers="f")[0] == 0


# --- hostile payloads: bounded work ------------------------------------------------

_KINDS = ("*", "{16-}", "{0-100000}", "{0-8}")


def _hostile(folder: Path, matcher: str, size: int) -> tuple[list[str], Meter, int]:
    """Patterns whose first piece fills the payload and whose last never completes."""
    rng = random.Random(5)
    pieces = [(rng.randbytes(8), rng.randbytes(6)) for _ in range(24)]
    lines = [
        f"Gap.{i}:0:*:{a.hex()}{_KINDS[i % len(_KINDS)]}{b.hex()}"
        for i, (a, b) in enumerate(pieces)
    ]
    sigs = load_dbs(folder, {"hostile.ndb": "\n".join(lines) + "\n"}, matcher)
    # every first piece, over and over; the last pieces of the {0-8} patterns
    # too, but each 30 bytes after its first piece, out of reach
    unit = b"".join(a + b"." * 30 + (b if i % 4 == 3 else b"") for i, (a, b) in enumerate(pieces))
    payload = (unit * (size // len(unit) + 1))[:size]
    found = names(sigs, payload, FileKind.BINARY)
    return found, sigs.confirm_meter, len(pieces) * 2


@pytest.mark.parametrize("matcher", MATCHERS)
def test_hostile_payload_work_is_linear(tmp_path: Path, matcher: str) -> None:
    small, meter_small, pieces = _hostile(tmp_path / "s", matcher, 64 << 10)
    large, meter_large, _ = _hostile(tmp_path / "l", matcher, 256 << 10)
    assert small == large == []
    # every candidate was confirmed, and the work was counted
    assert meter_small.positions > 0
    # at most a few passes over the payload per piece, whatever the payload holds
    assert meter_large.positions <= 3 * pieces * (256 << 10)
    # four times the payload, about four times the work (a quadratic check: sixteen)
    assert meter_large.positions <= 4.5 * meter_small.positions


@pytest.mark.parametrize("matcher", MATCHERS)
def test_hostile_payload_still_finds_the_real_match(tmp_path: Path, matcher: str) -> None:
    sigs = load_dbs(
        tmp_path,
        {"a.ndb": f"Star:0:*:{_h('first-piece')}*{_h('last-piece')}\n"},
        matcher,
    )
    payload = b"first-piece" * 50_000 + b"last-piece"
    assert names(sigs, payload, FileKind.BINARY) == ["Star"]
    assert sigs.confirm_meter.positions <= 3 * len(payload)
