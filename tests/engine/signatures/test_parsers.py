"""Database line parsers: what loads, what is skipped (and why), what is an error."""

from __future__ import annotations

from pathlib import Path

import pytest
from sig_helpers import load_dbs, names

from mailwarden.engine.filetype import FileKind
from mailwarden.errors import SignatureError

H = "deadbeefcafe".upper()


@pytest.mark.parametrize(
    ("file", "line", "reason"),
    [
        ("a.ndb", f"S:1:EP+10:{H}", "offset EP/section-relative"),
        ("a.ndb", f"S:1:S2+10:{H}", "offset EP/section-relative"),
        ("a.ndb", f"S:13:*:{H}", "target type 13"),
        ("a.ndb", f"S:0:*:{H}:999", "functionality level"),
        ("a.ndb", f"S:0:*:{H}:10:20", "functionality level"),
        ("a.ndb", f"S:0:$12:{H}", "macro signature"),
        ("a.ndb", "S:0:*:41(B)4243", "character class (B)"),
        ("a.ldb", f"S;Target:0;0&1;{H};0/abc/i", "PCRE subsignature"),
        ("a.ldb", f"S;Target:0;0&1;{H};0(>>4#ib2#=10)", "byte-compare subsignature"),
        ("a.ldb", f"S;Target:0;0&1;{H};${{6-7}}12$", "macro subsignature"),
        ("a.ldb", f"S;Target:1,EntryPoint:0-20;0;{H}", "PE condition EntryPoint"),
        ("a.ldb", f"S;Target:1,NumberOfSections:3;0;{H}", "PE condition NumberOfSections"),
        ("a.ldb", f"S;Target:0,IconGroup1:x;0;{H}", "icon group"),
        (
            "a.ldb",
            f"S;Target:0,Intermediates:CL_TYPE_ZIP>CL_TYPE_RAR;0;{H}",
            "Intermediates with several layers",
        ),
        ("a.ldb", f"S;Target:0,Container:CL_TYPE_ARJ;0;{H}", "container type CL_TYPE_ARJ"),
        ("a.ldb", f"S;Engine:300-400,Target:0;0;{H}", "functionality level"),
        ("a.ldb", f"S;Target:0;0|1;1:{H}::i;EP+1:{H}", "offset EP/section-relative"),
    ],
)
def test_unsupported_signatures_are_counted(
    tmp_path: Path, file: str, line: str, reason: str
) -> None:
    good = "Good:0:*:" + "676f6f64"
    sigs = load_dbs(tmp_path, {file: line + "\n", "good.ndb": good + "\n"})
    assert sigs.report.skipped == {reason: 1}
    assert names(sigs, b"good", FileKind.BINARY) == ["Good"]


@pytest.mark.parametrize(
    ("file", "text", "lineno", "message"),
    [
        ("bad.ndb", "Ok:0:*:414243\nBad:0:*:41424\n", 2, "hex pattern"),
        ("bad.ndb", "Bad:0:*\n", 1, "expected Name"),
        ("bad.ndb", "Bad:99:*:414243\n", 1, "target type"),
        ("bad.ndb", "Bad:0:x:414243\n", 1, "bad offset"),
        ("bad.hdb", "\n\nnothex:12:Name\n", 3, "non-hexadecimal"),
        ("bad.hdb", "aabb:12:Name\n", 1, "MD5, SHA1 or SHA256"),
        ("bad.hdb", "d41d8cd98f00b204e9800998ecf8427e:big:Name\n", 1, "bad size"),
        ("bad.hsb", "d41d8cd98f00b204e9800998ecf8427e\n", 1, "at least 3 fields"),
        ("bad.ldb", "S;Target:0;0&2;414243;444546\n", 1, "does not exist"),
        ("bad.ldb", "S;Target:0\n", 1, "expected Name"),
        ("bad.ldb", "S;Engine:51-255;0;414243\n", 1, "no Target"),
        ("bad.ldb", "S;Target:0,Bogus:1;0;414243\n", 1, "unknown target description"),
        ("bad.ldb", "S;Target:0,FileSize:9-2;0;414243\n", 1, "bad range"),
        ("bad.ldb", "S;Target:0;0;414243::z\n", 1, "modifier"),
        ("bad.ldb", "S;Target:0;0;" + ";".join(["414243"] * 65) + "\n", 1, "subsignatures"),
        ("bad.ign2", "Name:nothex\n", 1, "bad MD5"),
    ],
)
def test_errors_name_file_and_line(
    tmp_path: Path, file: str, text: str, lineno: int, message: str
) -> None:
    with pytest.raises(SignatureError, match=message) as info:
        load_dbs(tmp_path, {file: text})
    assert info.value.file == str(tmp_path / file)
    assert info.value.line == lineno
    assert f"{file}:{lineno}:" in str(info.value)


def test_comments_and_blank_lines_are_ignored(tmp_path: Path) -> None:
    sigs = load_dbs(tmp_path, {"a.ndb": "# a comment\n\n   \nSig:0:*:414243\r\n"})
    assert sigs.report.counts == {"ndb": 1}


def test_flevel_range_that_includes_us_loads(tmp_path: Path) -> None:
    sigs = load_dbs(
        tmp_path,
        {"a.ndb": "Sig:0:*:414243:51:255\n", "b.ldb": "L;Engine:51-255,Target:0;0;444546\n"},
    )
    assert sigs.report.counts == {"ndb": 1, "ldb": 1}
    assert sigs.report.skipped == {}


def test_ign2_by_name_and_by_line_md5(tmp_path: Path) -> None:
    import hashlib

    line_a = "IgnA:0:*:61616161"
    line_b = "IgnB:0:*:62626262"
    wrong = "0" * 32
    right = hashlib.md5(line_b.encode(), usedforsecurity=False).hexdigest()
    sigs = load_dbs(
        tmp_path,
        {
            "x.ndb": f"{line_a}\n{line_b}\nKeep:0:*:63636363\n",
            "x.ign2": f"IgnA\nIgnB:{right}\nKeep:{wrong}\n",
        },
    )
    assert names(sigs, b"aaaa bbbb cccc", FileKind.BINARY) == ["Keep"]
    assert sigs.report.skipped == {"ignored by .ign2": 2}


def test_ign2_applies_to_hash_and_logical_signatures(tmp_path: Path) -> None:
    import hashlib

    md5 = hashlib.md5(b"payload", usedforsecurity=False).hexdigest()
    sigs = load_dbs(
        tmp_path,
        {
            "x.hdb": f"{md5}:7:Hashed\n",
            "x.ldb": "Logical;Target:0;0;7061796c6f6164\n",
            "x.ign2": "Hashed\nLogical\n",
        },
    )
    assert sigs.match(b"payload", FileKind.BINARY) == []
    assert sigs.signature_count == 0
