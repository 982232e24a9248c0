"""Hyperscan and the Aho-Corasick fallback agree, and Hyperscan refusals fall back to re."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sig_helpers import write_dbs

from mailwarden.engine.filetype import FileKind
from mailwarden.engine.signatures import hs_compile, load_signatures
from mailwarden.engine.signatures import matchers as matchers_mod
from mailwarden.engine.signatures.hexsig import compile_hexsig
from mailwarden.engine.signatures.matchers import AhoMatcher, HyperscanMatcher, hyperscan_available
from mailwarden.engine.signatures.offsets import ANYWHERE
from mailwarden.engine.signatures.tables import Pattern

needs_hyperscan = pytest.mark.skipif(not hyperscan_available(), reason="no hyperscan")

# a small alphabet so random patterns and random data meet often
_BYTES = st.sampled_from([0x61, 0x62, 0x63, 0x41, 0x00])
_HEX = _BYTES.map(lambda b: f"{b:02x}")


@st.composite
def _element(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 9))
    if kind <= 3:
        return "".join(draw(st.lists(_HEX, min_size=1, max_size=3)))
    if kind == 4:
        return "??"
    if kind == 5:
        lo = draw(st.integers(0, 3))
        return draw(
            st.sampled_from(
                [f"{{{lo}}}", f"{{{lo}-}}", f"{{-{lo + 1}}}", f"{{{lo}-{lo + 2}}}", "*"]
            )
        )
    if kind == 6:
        return "(" + "|".join(draw(st.lists(_HEX, min_size=2, max_size=3))) + ")"
    if kind == 7:
        return "!(" + "|".join(draw(st.lists(_HEX, min_size=1, max_size=2))) + ")"
    if kind == 8:
        width = draw(st.integers(2, 2))
        opts = draw(
            st.lists(
                st.lists(_HEX, min_size=width, max_size=width).map("".join), min_size=1, max_size=2
            )
        )
        return "!(" + "|".join(opts) + ")"
    return draw(st.sampled_from(["6?", "?1", "4?"]))


@st.composite
def _pattern(draw: st.DrawFn) -> str:
    # start and end with literals, as ClamAV requires fixed bytes at the edges of gaps
    middle = "".join(draw(st.lists(_element(), max_size=4)))
    return draw(_HEX) + draw(_HEX) + middle + draw(_HEX)


@st.composite
def _database(draw: st.DrawFn) -> tuple[str, str]:
    ndb = []
    for i, pat in enumerate(draw(st.lists(_pattern(), min_size=1, max_size=6))):
        offset = draw(st.sampled_from(["*", "*", "0", "2,6", "EOF-8,8"]))
        ndb.append(f"R.{i}:0:{offset}:{pat}")
    ldb = []
    for i in range(draw(st.integers(0, 2))):
        subs = draw(st.lists(_pattern(), min_size=2, max_size=3))
        mods = draw(st.sampled_from(["", "::i", "::w", "::wa", "::f"]))
        expr = draw(st.sampled_from(["0&1", "0|1", "0>1", "(0|1)=2,2", "0&1=0"]))
        ldb.append(f"L.{i};Engine:81-255,Target:0;{expr};{subs[0]}{mods};{';'.join(subs[1:])}")
    return "\n".join(ndb) + "\n", "\n".join(ldb) + "\n"


@needs_hyperscan
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    db=_database(),
    payloads=st.lists(
        st.binary(max_size=64).map(
            lambda b: b.translate(
                bytes.maketrans(
                    bytes(range(256)), bytes([0x61, 0x62, 0x63, 0x41, 0x00, 0x20, 0x42, 0x43] * 32)
                )
            )
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_hyperscan_and_aho_agree(
    tmp_path_factory: pytest.TempPathFactory, db: tuple[str, str], payloads: list[bytes]
) -> None:
    folder = write_dbs(tmp_path_factory.mktemp("agree"), {"r.ndb": db[0], "l.ldb": db[1]})
    hs = load_signatures([folder], bundled=False, matcher="hyperscan")
    aho = load_signatures([folder], bundled=False, matcher="aho")
    for data in payloads:
        a = sorted(m.name for m in hs.match(data, FileKind.BINARY, all_matches=True))
        b = sorted(m.name for m in aho.match(data, FileKind.BINARY, all_matches=True))
        assert a == b, (db, data)


@needs_hyperscan
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(db=_database(), data=st.binary(max_size=64).map(lambda b: b.translate(_SMALL)))
def test_atom_prefilter_agrees_with_aho(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    db: tuple[str, str],
    data: bytes,
) -> None:
    # with one-byte atoms allowed, every pattern with gaps is looked for by its atoms
    monkeypatch.setattr(matchers_mod, "MIN_HS_ATOM", 1)
    folder = write_dbs(tmp_path_factory.mktemp("atoms"), {"r.ndb": db[0], "l.ldb": db[1]})
    hs = load_signatures([folder], bundled=False, matcher="hyperscan")
    aho = load_signatures([folder], bundled=False, matcher="aho")
    a = [m.name for m in hs.match(data, FileKind.BINARY, all_matches=True)]
    b = [m.name for m in aho.match(data, FileKind.BINARY, all_matches=True)]
    assert a == b, (db, data)


@needs_hyperscan
def test_patterns_with_gaps_are_found_by_their_atoms_and_confirmed() -> None:
    built = HyperscanMatcher.build(
        _patterns("616263646566{2-4}676869", "6a6b6c6d6e6f7071", "7273??74")
    )
    # the first has long atoms, the second is a plain literal, the third's atoms are short
    assert built.confirm == b"\x01\x00\x00"
    assert built.candidates(b"abcdef ghi") == {0: -1}
    assert built.candidates(b"xx abcdef") == {0: -1}
    assert built.candidates(b"jklmnopq rs t") == {1: 8, 2: 13}
    assert built.candidates(b"rst") == {}


_SMALL = bytes.maketrans(
    bytes(range(256)), bytes([0x61, 0x62, 0x63, 0x41, 0x00, 0x20, 0x42, 0x43] * 32)
)


def _patterns(*hexsigs: str) -> list[Pattern]:
    out = []
    for text in hexsigs:
        c = compile_hexsig(text)
        out.append(Pattern(c.regex, c.hs, c.exact, c.caseless, c.atoms, ANYWHERE, 0))
    return out


@needs_hyperscan
def test_patterns_hyperscan_refuses_are_left_to_re(monkeypatch: pytest.MonkeyPatch) -> None:
    import hyperscan

    real = hs_compile.compile_one

    def picky(hs: object, entries: list[tuple[bytes, int, int]]) -> object:
        # pretend Hyperscan cannot compile the pattern for "bbbb"
        if any(e[0] == b"\\x62\\x62\\x62\\x62" for e in entries):
            raise hyperscan.error("pattern too large")
        return real(hs, entries)

    monkeypatch.setattr(hs_compile, "compile_one", picky)
    built = HyperscanMatcher.build(_patterns("61616161", "62626262", "63636363"))
    assert built.re_only == (1,)
    assert built.candidates(b"bbbb cccc") == {1: -1, 2: 9}
    assert built.candidates(b"aaaa") == {1: -1, 0: 4}


@needs_hyperscan
def test_large_sets_compile_in_a_child_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matchers_mod, "CHILD_COMPILE_FROM", 2)
    built = HyperscanMatcher.build(_patterns("61616161", "62626262"))
    assert built.candidates(b"xx bbbb") == {1: 7}


@needs_hyperscan
def test_refused_patterns_still_match_through_the_signature_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        HyperscanMatcher,
        "start_plan",
        classmethod(lambda cls, plan: lambda: cls.load({}, range(len(plan.confirm)))),
    )
    folder = write_dbs(tmp_path, {"x.ndb": "A:0:*:61616161\nB:0:EOF-4:62626262\n"})
    sigs = load_signatures([folder], bundled=False, matcher="hyperscan")
    assert sigs.report.extra == {"patterns left to re": 2}
    assert [m.name for m in sigs.match(b"aaaa bbbb", FileKind.BINARY, all_matches=True)] == [
        "A",
        "B",
    ]


@needs_hyperscan
def test_hyperscan_database_round_trips() -> None:
    built = HyperscanMatcher.build(_patterns("6162??64"))
    again = HyperscanMatcher.load(built.dump(), [])
    assert again.candidates(b"xxabzdxx") == {0: 6}
    assert again.candidates(b"abd") == {}


def test_aho_always_checks_patterns_without_long_atoms() -> None:
    from mailwarden.engine.signatures.hexsig import compile_hexsig
    from mailwarden.engine.signatures.offsets import ANYWHERE
    from mailwarden.engine.signatures.tables import Pattern

    short = compile_hexsig("61??62")
    long = compile_hexsig("6c6f6e67")
    pats = [
        Pattern(p.regex, p.hs, p.exact, p.caseless, p.atoms, ANYWHERE, 0) for p in (short, long)
    ]
    aho = AhoMatcher(pats)
    assert aho.always == (0,)
    assert aho.candidates(b"xx long xx") == {0: -1, 1: -1}
    assert aho.candidates(b"nothing") == {0: -1}
    assert aho.candidates(b"") == {}


@needs_hyperscan
def test_failed_child_compile_is_a_signature_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from mailwarden.errors import SignatureError

    monkeypatch.setattr(matchers_mod, "CHILD_COMPILE_FROM", 1)
    monkeypatch.setattr(matchers_mod.sys, "executable", "/bin/false")
    with pytest.raises(SignatureError, match="compile failed"):
        HyperscanMatcher.build(_patterns("61616161"))


@needs_hyperscan
def test_one_database_per_target_and_only_the_buffers_targets_scanned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(matchers_mod, "SEPARATE_FROM", 1)
    any_target, pe_only = _patterns("61616161", "62626262")
    pe_only = Pattern(
        pe_only.regex, pe_only.hs, pe_only.exact, pe_only.caseless, pe_only.atoms, ANYWHERE, 1
    )
    built = HyperscanMatcher.build([any_target, pe_only])
    assert sorted(built.dump()) == [(0, 0), (1, 0)]
    assert built.candidates(b"aaaa bbbb", {0}) == {0: 4}
    assert built.candidates(b"aaaa bbbb", {0, 1}) == {0: 4, 1: 9}
    again = HyperscanMatcher.load(built.dump(), [])
    assert again.candidates(b"aaaa bbbb") == {0: 4, 1: 9}


@needs_hyperscan
def test_small_target_groups_share_the_any_target_database() -> None:
    any_target, pe_only = _patterns("61616161", "62626262")
    pe_only = Pattern(
        pe_only.regex, pe_only.hs, pe_only.exact, pe_only.caseless, pe_only.atoms, ANYWHERE, 1
    )
    built = HyperscanMatcher.build([any_target, pe_only])
    assert sorted(built.dump()) == [(0, 0)]
    # the signature set drops the PE pattern for a buffer that is not PE
    assert built.candidates(b"aaaa bbbb", {0}) == {0: 4, 1: 9}


@needs_hyperscan
def test_the_compile_child_imports_nothing_of_the_package_and_takes_empty_input() -> None:
    code = (
        "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__');"
        "print(sorted(m for m in sys.modules if m.startswith('mailwarden')), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-P", "-c", code, hs_compile.__file__],
        input=b"",
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert done.stdout == b"\x00\x00\x00\x00"  # nothing refused, no database
    assert done.stderr.strip() == b"[]"


@needs_hyperscan
def test_a_child_started_in_advance_compiles_the_biggest_group_or_is_ended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(matchers_mod, "CHILD_COMPILE_FROM", 2)
    plan = matchers_mod.HyperscanPlan(prewarm=True)
    warm = plan._warm
    assert warm is not None
    for pid, p in enumerate(_patterns("61616161", "62626262")):
        plan.add(pid, p, p.target)
    built = HyperscanMatcher.start_plan(plan)()
    assert warm.returncode == 0  # it did the compile
    assert built.candidates(b"xx bbbb") == {1: 7}

    unused = matchers_mod.HyperscanPlan(prewarm=True)
    child = unused._warm
    assert child is not None
    unused.close()
    assert child.returncode is not None


@needs_hyperscan
def test_a_big_target_is_cut_into_parts_that_scan_as_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(matchers_mod, "MAX_DB_ENTRIES", 2)
    texts = ["61616161", "62626262", "63636363", "64646464", "65656565"]
    built = HyperscanMatcher.build(_patterns(*texts))
    assert sorted(built.dump()) == [(0, 0), (0, 1), (0, 2)]
    data = b"aaaa bbbb cccc dddd eeee"
    assert built.candidates(data) == {0: 4, 1: 9, 2: 14, 3: 19, 4: 24}
    again = HyperscanMatcher.load(built.dump(), [])
    assert again.candidates(data) == built.candidates(data)
    # and through the cache: a second load maps the parts back
    folder = write_dbs(
        tmp_path / "db", {"x.ndb": "".join(f"S{i}:0:*:{t}\n" for i, t in enumerate(texts))}
    )
    cache = tmp_path / "cache"
    first = load_signatures([folder], bundled=False, matcher="hyperscan", cache_dir=cache)
    second = load_signatures([folder], bundled=False, matcher="hyperscan", cache_dir=cache)
    assert second.report.from_cache and not first.report.from_cache
    for sigs in (first, second):
        found = sigs.match(data, FileKind.BINARY, all_matches=True)
        assert sorted(m.name for m in found) == ["S0", "S1", "S2", "S3", "S4"]
