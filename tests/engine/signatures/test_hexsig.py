"""Hex body patterns: each syntax feature matches what it should and nothing else."""

from __future__ import annotations

import re

import pytest

from mailwarden.engine.signatures.hexsig import HS_MAX_REPEAT, compile_hexsig
from mailwarden.engine.signatures.offsets import MalformedSignature, UnsupportedSignature


def _h(text: str) -> str:
    return text.encode().hex()


def _matches(pattern: str, data: bytes, modifiers: str = "") -> bool:
    c = compile_hexsig(pattern, modifiers)
    flags = re.DOTALL | (re.IGNORECASE if c.caseless else 0)
    return re.search(c.regex, data, flags) is not None


CASES = [
    # (pattern, matching data, non-matching data)
    (_h("abc"), b"xxabcxx", b"xxabxcx"),
    (_h("ab") + "??" + _h("c"), b"ab\x00c", b"abc"),
    (_h("ab") + "6?" + _h("c"), b"abzc"[:2] + b"\x6fc", b"ab\x7fc"),
    (_h("ab") + "?f" + _h("c"), b"ab\x2fc", b"ab\x2ec"),
    (_h("ab") + "*" + _h("cd"), b"ab" + b"\x00" * 5000 + b"cd", b"cd ab"),
    (_h("ab") + "{3}" + _h("cd"), b"ab123cd", b"ab12cd"),
    (_h("ab") + "{3-}" + _h("cd"), b"ab123456cd", b"ab12cd"),
    (_h("ab") + "{-2}" + _h("cd"), b"ab1cd", b"ab123cd"),
    (_h("ab") + "{1-2}" + _h("cd"), b"ab12cd", b"abcd"),
    (_h("ab") + "(63|64)" + _h("e"), b"abde", b"abfe"),
    (_h("ab") + "(6364|6566)" + _h("g"), b"abefg", b"abceg"),
    (_h("ab") + "(63??|7a)" + _h("g"), b"abc!g", b"abd!g"),
    (_h("ab") + "!(63|64)" + _h("e"), b"abxe", b"abce"),
    (_h("ab") + "!(6364|6566)" + _h("g"), b"abceg", b"abefg"),
    (_h("abcd") + "[1-2]" + _h("z"), b"abcd1z", b"abcd123z"),
    (_h("ab") + "(W)" + _h("cd"), b"ab-cd", b"abxcd"),
]


@pytest.mark.parametrize(("pattern", "good", "bad"), CASES)
def test_feature_matches_and_rejects(pattern: str, good: bytes, bad: bytes) -> None:
    assert _matches(pattern, good)
    assert not _matches(pattern, bad)


def test_uppercase_hex_is_accepted() -> None:
    assert _matches("4142", b"AB")
    assert _matches("4A4b", b"JK")


@pytest.mark.parametrize(
    ("modifiers", "good", "bad"),
    [
        ("i", b"HeLLo", b"hallo"),
        ("w", b"h\x00e\x00l\x00l\x00o\x00", b"hello"),
        ("wa", b"hello", b"h\x00e\x00l\x00l\x00x\x00"),
        ("f", b"say hello!", b"sayhello"),
        ("fi", b"(HELLO)", b"HELLOS"),
    ],
)
def test_subsignature_modifiers(modifiers: str, good: bytes, bad: bytes) -> None:
    assert _matches(_h("hello"), good, modifiers)
    assert not _matches(_h("hello"), bad, modifiers)


def test_wide_ascii_also_matches_wide() -> None:
    assert _matches(_h("hello"), "hello".encode("utf-16-le"), "wa")


def test_literal_patterns_are_exact_in_hyperscan_form() -> None:
    c = compile_hexsig(_h("abc") + "??" + "(41|42)" + "{2-4}" + _h("z"))
    assert c.exact
    assert c.hs == b""


@pytest.mark.parametrize(
    "pattern",
    [
        _h("ab") + "!(6364|6566)" + _h("g"),
        _h("ab") + f"{{1-{HS_MAX_REPEAT + 1}}}" + _h("cd"),
        _h("ab") + f"{{{HS_MAX_REPEAT + 1}-}}" + _h("cd"),
    ],
)
def test_inexpressible_forms_are_flagged_for_confirmation(pattern: str) -> None:
    c = compile_hexsig(pattern)
    assert not c.exact
    # the Hyperscan form must still accept everything the exact form accepts
    assert b"(?!" not in c.hs


def test_fullword_is_inexact() -> None:
    assert not compile_hexsig(_h("hello"), "f").exact


def test_atoms_pick_the_longest_literal() -> None:
    c = compile_hexsig(_h("ab") + "??" + _h("longer") + "*" + _h("xyz"))
    assert c.atoms == (b"longer",)


def test_atoms_of_alternatives_cover_every_branch() -> None:
    c = compile_hexsig("(" + _h("one") + "|" + _h("two") + ")")
    assert set(c.atoms) == {b"one", b"two"}


def test_caseless_atoms_are_lower_case() -> None:
    assert compile_hexsig(_h("ABC"), "i").atoms == (b"abc",)


def test_atoms_absent_when_no_literal_is_required() -> None:
    assert compile_hexsig("(41??|????)").atoms == ()


@pytest.mark.parametrize(
    "pattern",
    [
        "",
        "4",
        "zz",
        "41(42",
        "41|42",
        "41)",
        "41{3",
        "41{4-2}42",
        "41[3-1]42",
        "!41",
        "41!(42??|43)",
        "41!(4243|44)",
        "41()42",
        "??",
        "*",
        "{1-2}",
    ],
)
def test_malformed_patterns_are_rejected(pattern: str) -> None:
    with pytest.raises(MalformedSignature):
        compile_hexsig(pattern)


def test_unknown_modifier_is_rejected() -> None:
    with pytest.raises(MalformedSignature, match="modifier"):
        compile_hexsig("4142", "x")


@pytest.mark.parametrize("cls", ["(B)", "(L)"])
def test_boundary_classes_are_unsupported(cls: str) -> None:
    with pytest.raises(UnsupportedSignature) as info:
        compile_hexsig("4142" + cls + "4344")
    assert cls[1] in info.value.reason


def test_nesting_is_bounded() -> None:
    with pytest.raises(MalformedSignature, match="deeply"):
        compile_hexsig("(" * 20 + "41" + ")" * 20)


def test_huge_numbers_are_rejected() -> None:
    with pytest.raises(MalformedSignature, match="range"):
        compile_hexsig("41{99999999999}42")
