"""Cross-check: the feature signatures give the same name per file as Debian's clamscan."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import feature_samples as fs
import pytest
from sig_helpers import MATCHERS

from mailwarden.engine.filetype import sniff
from mailwarden.engine.signatures import load_signatures

pytestmark = [
    pytest.mark.clamd,
    pytest.mark.skipif(shutil.which("clamscan") is None, reason="clamscan is not installed"),
]


def _clamscan(db: Path, files: list[Path]) -> dict[str, str | None]:
    out = subprocess.run(
        ["clamscan", "--no-summary", "-d", str(db), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    # clamscan exits 1 when something was found; 2 is an error
    assert out.returncode in (0, 1), out.stderr
    result: dict[str, str | None] = {}
    for line in out.stdout.splitlines():
        path, _, verdict = line.rpartition(": ")
        name = None if verdict == "OK" else verdict.removesuffix(" FOUND")
        result[Path(path).name] = None if name is None else name.removesuffix(".UNOFFICIAL")
    return result


@pytest.fixture(scope="module")
def clamscan_names(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str | None]]:
    root = tmp_path_factory.mktemp("xcheck")
    samples = fs.samples()
    fs.write_databases(root / "db", samples)
    paths = fs.write_samples(root / "files", samples)
    return root / "db", _clamscan(root / "db", list(paths))


@pytest.mark.parametrize("matcher", MATCHERS)
def test_same_name_as_clamscan_for_every_sample(
    clamscan_names: tuple[Path, dict[str, str | None]], matcher: str
) -> None:
    db, theirs = clamscan_names
    sigs = load_signatures([db], bundled=False, matcher=matcher)  # type: ignore[arg-type]
    differences = []
    for sample in fs.samples():
        hits = sigs.match(sample.data, sniff(sample.data))
        ours = hits[0].name if hits else None
        if sample.file not in theirs or ours != theirs[sample.file]:
            differences.append((sample.file, ours, theirs.get(sample.file, "missing")))
    assert differences == []
    # every feature signature was loaded; none was skipped
    assert sigs.report.skipped == {"ignored by .ign2": 1}
