"""YARA rules through yara-x: loading, matching, errors, buffers and the cache blob."""

from __future__ import annotations

import mmap
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yara_x
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.engine.limits import LimitExceeded
from mailwarden.engine.signatures.yara import YaraRules
from mailwarden.errors import SignatureError

DATA = Path(__file__).resolve().parents[2] / "data" / "yara"
HEX_SAMPLE = b"MZ\x90\x00\x01\x02\x03\xde\xad\xbe\xef" + b"\x00" * 100


@pytest.fixture(scope="module")
def rules() -> YaraRules:
    return YaraRules.load([DATA])


def test_directory_loads_its_rule_files_only(rules: YaraRules) -> None:
    # strings.yar and conditions.yara; notes.txt and subdirectories are skipped
    assert rules.rule_count == 4


def test_text_string_ascii_and_wide(rules: YaraRules) -> None:
    assert rules.match(b"header MAILWARDEN-YARA-TEST footer") == ["Test_Text_Marker"]
    wide = "MAILWARDEN-YARA-TEST".encode("utf-16-le")
    assert rules.match(b"\x00\x01" + wide) == ["Test_Text_Marker"]


def test_hex_string_with_wildcards_and_jump(rules: YaraRules) -> None:
    assert rules.match(HEX_SAMPLE) == ["Test_Hex_Pattern"]
    # the rule anchors the pattern at offset 0
    assert rules.match(b"x" + HEX_SAMPLE) == []


@pytest.mark.parametrize(
    ("data", "hit"),
    [
        (b"alpha and bravo", True),
        (b"charlie ... alpha", True),
        (b"only alpha here", False),
        (b"bravo bravo bravo", False),
    ],
)
def test_n_of_them_condition(rules: YaraRules, data: bytes, hit: bool) -> None:
    assert ("Test_Two_Of_Three" in rules.match(data)) is hit


def test_filesize_and_integer_condition(rules: YaraRules) -> None:
    assert rules.match(b"ILE!short") == ["Test_Small_With_Header"]
    assert rules.match(b"ILE!" + b"." * 100) == []


def test_clean_data_matches_nothing(rules: YaraRules) -> None:
    assert rules.match(b"Dear customer, your order has shipped.") == []
    assert rules.match(b"") == []


def test_several_rules_match_in_rule_set_order(rules: YaraRules) -> None:
    found = rules.match(b"ILE! alpha bravo MAILWARDEN-YARA-TEST")
    # conditions.yara loads before strings.yar
    assert found == ["Test_Two_Of_Three", "Test_Small_With_Header", "Test_Text_Marker"]


def test_single_file_path() -> None:
    loaded = YaraRules.load([DATA / "strings.yar"])
    assert loaded.rule_count == 2
    assert loaded.match(HEX_SAMPLE) == ["Test_Hex_Pattern"]


def test_include_resolves_next_to_the_including_file() -> None:
    loaded = YaraRules.load([DATA / "includes" / "main.yar"])
    assert loaded.rule_count == 2
    assert loaded.match(b"... common-marker ...") == ["Test_Common_Marker", "Test_Uses_Include"]


def test_no_rules_match_nothing() -> None:
    empty = YaraRules.load([])
    assert empty.rule_count == 0
    assert empty.match(b"anything") == []


# --- errors ----------------------------------------------------------------------------


def test_compile_error_names_file_and_line() -> None:
    broken = DATA / "broken" / "undefined_pattern.yar"
    with pytest.raises(SignatureError) as err:
        YaraRules.load([DATA / "strings.yar", broken])
    assert err.value.file == str(broken)
    assert err.value.line == 12
    assert f"{broken}:12" in str(err.value)


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "syntax.yar"
    bad.write_text('rule ok { condition: true }\n\nrule bad {\n  strings: $a = "x"\n  cond\n}\n')
    with pytest.raises(SignatureError) as err:
        YaraRules.load([tmp_path])
    assert err.value.file == str(bad)
    assert err.value.line == 5


def test_duplicate_rule_names_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yar").write_text("rule Same { condition: true }\n")
    (tmp_path / "b.yar").write_text("\nrule Same { condition: false }\n")
    with pytest.raises(SignatureError) as err:
        YaraRules.load([tmp_path])
    assert err.value.file == str(tmp_path / "b.yar")
    assert err.value.line == 2


def test_missing_file_is_a_signature_error(tmp_path: Path) -> None:
    with pytest.raises(SignatureError) as err:
        YaraRules.load([tmp_path / "absent.yar"])
    assert err.value.file == str(tmp_path / "absent.yar")


def test_non_utf8_rule_file(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.yar"
    bad.write_bytes(b'rule r { strings: $a = "caf\xe9" condition: $a }\n')
    with pytest.raises(SignatureError, match="UTF-8") as err:
        YaraRules.load([bad])
    assert err.value.file == str(bad)


def test_timeout_becomes_a_limit(rules: YaraRules, monkeypatch: pytest.MonkeyPatch) -> None:
    class _SlowScanner:
        def scan(self, data: bytes) -> Any:
            raise yara_x.TimeoutError("timeout")

    slow = YaraRules.load([DATA], timeout=3)
    monkeypatch.setattr(slow, "_scanner", _SlowScanner)
    with pytest.raises(LimitExceeded, match="YARA scan time over 3 s"):
        slow.match(b"anything")


# --- buffers ------------------------------------------------------------------------------


@pytest.fixture
def mapped() -> Iterator[mmap.mmap]:
    with tempfile.TemporaryFile() as fh:
        fh.write(b"\x00" * 70_000 + b"MAILWARDEN-YARA-TEST" + b"\x00" * 10)
        fh.flush()
        view = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        yield view
        view.close()


def test_scans_an_mmap_buffer(rules: YaraRules, mapped: mmap.mmap) -> None:
    assert rules.match(mapped) == ["Test_Text_Marker"]


def test_data_past_max_scan_bytes_is_not_scanned(mapped: mmap.mmap) -> None:
    short = YaraRules.load([DATA], max_scan_bytes=70_000)
    assert short.match(mapped) == []
    assert short.match(bytes(mapped)) == []
    assert short.match(bytes(mapped[60_000:])) == ["Test_Text_Marker"]


def test_threads_share_one_rule_set(rules: YaraRules) -> None:
    inputs = [b"alpha bravo", HEX_SAMPLE, b"clean", b"MAILWARDEN-YARA-TEST"] * 10
    expected = [rules.match(d) for d in inputs]
    results: dict[int, list[list[str]]] = {}

    def work(n: int) -> None:
        results[n] = [rules.match(d) for d in inputs]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[n] == expected for n in range(4))


# --- cache blob ---------------------------------------------------------------------------


def test_serialize_round_trip(rules: YaraRules) -> None:
    again = YaraRules.deserialize(rules.serialize())
    assert again.rule_count == rules.rule_count
    for data in (HEX_SAMPLE, b"alpha charlie", b"ILE!", b"clean"):
        assert again.match(data) == rules.match(data)


@pytest.mark.parametrize("blob", [b"", b"garbage", b"\x00" * 64])
def test_deserialize_rejects_foreign_blobs(blob: bytes) -> None:
    with pytest.raises(SignatureError):
        YaraRules.deserialize(blob)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=2048))
def test_match_never_raises(rules: YaraRules, data: bytes) -> None:
    assert set(rules.match(data)) <= {
        "Test_Text_Marker",
        "Test_Hex_Pattern",
        "Test_Two_Of_Three",
        "Test_Small_With_Header",
    }
