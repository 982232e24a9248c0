"""Every feature signature matches its positive samples and none of its negative ones."""

from __future__ import annotations

from pathlib import Path

import feature_samples as fs
import pytest
from sig_helpers import MATCHERS

from mailwarden.engine.filetype import sniff
from mailwarden.engine.signatures import SignatureSet, load_signatures


@pytest.fixture(scope="module", params=MATCHERS)
def feature_sigs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> SignatureSet:
    folder = tmp_path_factory.mktemp("features")
    fs.write_databases(folder, fs.samples())
    return load_signatures([folder], bundled=False, matcher=request.param)


@pytest.mark.parametrize("sample", fs.samples(), ids=lambda s: s.file)
def test_sample_gives_expected_name(feature_sigs: SignatureSet, sample: fs.Sample) -> None:
    hits = feature_sigs.match(sample.data, sniff(sample.data))
    assert (hits[0].name if hits else None) == sample.expect


def test_feature_databases_load_completely(feature_sigs: SignatureSet) -> None:
    report = feature_sigs.report
    ndb_lines = (fs.DATA_DIR / "features.ndb").read_text().count("\n")
    ldb_lines = (fs.DATA_DIR / "features.ldb").read_text().count("\n")
    # one .ndb line is dropped on purpose by features.ign2
    assert report.counts["ndb"] == ndb_lines - 1
    assert report.counts["ldb"] == ldb_lines
    assert report.skipped == {"ignored by .ign2": 1}


def test_unofficial_names_carry_the_clamd_suffix(feature_sigs: SignatureSet) -> None:
    data = next(s.data for s in fs.samples() if s.file == "plain.bin")
    (hit,) = feature_sigs.match(data, sniff(data))
    assert not hit.official
    assert hit.clamd_name == "Feat.Plain.UNOFFICIAL"


def test_samples_are_written_as_files(tmp_path: Path) -> None:
    written = fs.write_samples(tmp_path, fs.samples())
    assert {p.name for p in written} == {s.file for s in fs.samples()}
    assert all(p.read_bytes() == s.data for p, s in written.items())
