"""Correctness against clamd: the engine and clamd agree on every message.

Both scanners get the same signature folder (the shared generator's signatures
at a reduced size plus the hand-written feature signatures) and the same
messages (the shared corpus generator's mail plus each feature sample, bare
and attached to a message).  On
each message they must give the same verdict and, when infected, the same
signature name, except where ``tests/data/clamd_differences.toml`` lists the
disagreement with its reason.  Our heuristic findings (``suspicious``) have no
clamd counterpart: they count as clean here and are listed in the summary.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

import pytest

from support.benchdata import load_manifest, make_corpus, make_sigs, shared_bench_dir
from support.clamd import ClamdFactory, ClamdHandle
from support.outcomes import Outcome, agree, clamd_outcome, engine_outcome
from support.tools import missing, require

TESTS = Path(__file__).resolve().parents[1]
DIFFERENCES = TESTS / "data" / "clamd_differences.toml"
FEATURE_SAMPLES = TESTS / "engine" / "signatures" / "feature_samples.py"

#: Reduced from the benchmark's 200,000 / 20,000 / 2,000 to keep CI fast.
HASHES, BODIES, MESSAGES = 20_000, 2_000, 300

#: Database files clamd and the engine both read; the generator's manifest is left out.
SIGNATURE_SUFFIXES = {".hdb", ".hsb", ".mdb", ".msb", ".ndb", ".ldb", ".fp", ".sfp", ".ign2"}

DIFFERENCE_KEYS = {"file", "clamd", "mailwarden", "reason"}


@dataclass(frozen=True)
class Sample:
    label: str
    data: bytes
    expected: str | None = None  # the verdict the generator intended, when known
    as_mail: bool = True  # False: a bare file (the feature samples), not a message


def load_differences(path: Path = DIFFERENCES) -> list[dict[str, str]]:
    entries: list[dict[str, str]] = tomllib.loads(path.read_text()).get("difference", [])
    return entries


def _copy_databases(sources: Iterable[Path], target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for src in sources:
        if src.is_file() and src.suffix in SIGNATURE_SUFFIXES:
            shutil.copy2(src, target / src.name)


def _feature_module() -> Any:
    """``tests/engine/signatures/feature_samples.py``, loaded by path (not a package).

    It writes the feature databases (some entries depend on the samples' digests)
    and yields the samples with the name clamd is expected to report.
    """
    spec = importlib.util.spec_from_file_location("_against_clamd_features", FEATURE_SAMPLES)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is built
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _as_mail(name: str, payload: bytes) -> bytes:
    """``payload`` attached in base64 to a plain message, with a fixed boundary."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = "sender@example.org"
    msg["To"] = "rcpt@example.org"
    msg["Subject"] = f"feature sample {name}"
    msg.set_content("See the attachment.\n")
    msg.add_attachment(payload, maintype="application", subtype="octet-stream", filename=name)
    msg.set_boundary("=-feature-sample-boundary-=")
    return msg.as_bytes()


def _feature_samples(module: Any) -> Iterator[Sample]:
    """Each feature sample as a file, and attached to a message."""
    for s in module.samples():
        expected = "clean" if s.expect is None else "infected"
        yield Sample(f"features/{s.file}", s.data, expected, as_mail=False)
        yield Sample(f"features/mail/{s.file}", _as_mail(s.file, s.data), expected)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require(
        (shared_bench_dir() / "make_sigs.py").exists(),
        f"benchmark generators not found in {shared_bench_dir()}",
    )
    require(
        Path("/usr/share/clamav-testfiles").is_dir(),
        "clamav-testfiles is not installed (apt-get install clamav-testfiles)",
    )
    return tmp_path_factory.mktemp("against-clamd")


@pytest.fixture(scope="module")
def database(workdir: Path) -> Path:
    generated = make_sigs(workdir / "generated", hashes=HASHES, bodies=BODIES)
    db = workdir / "db"
    _copy_databases(sorted(generated.iterdir()), db)
    features = _feature_module()
    features.write_databases(db, features.samples())
    return db


@pytest.fixture(scope="module")
def samples(workdir: Path) -> list[Sample]:
    corpus = make_corpus(workdir / "corpus", n=MESSAGES)
    out = [
        Sample(e["file"], (corpus / e["file"]).read_bytes(), e["verdict"])
        for e in load_manifest(corpus)
    ]
    out.extend(_feature_samples(_feature_module()))
    return out


@pytest.fixture(scope="module")
def clamd(clamd_factory: ClamdFactory, database: Path) -> ClamdHandle:
    return clamd_factory(database)


@pytest.fixture(scope="module")
def clamd_results(clamd: ClamdHandle, samples: list[Sample]) -> dict[str, Outcome]:
    return {s.label: clamd_outcome(clamd.scan(s.data)) for s in samples}


@pytest.fixture(scope="module")
def engine(database: Path, workdir: Path) -> Any:
    try:
        from mailwarden.engine import Engine, EngineSettings
    except ImportError as exc:
        missing(f"mailwarden.engine cannot be imported: {exc}")
    settings = EngineSettings(databases=(database,), bundled=False, cache_dir=workdir / "cache")
    return Engine.load(settings)


def test_differences_file_is_well_formed() -> None:
    entries = load_differences()
    files = [e.get("file") for e in entries]
    assert len(files) == len(set(files)), "one entry per file"
    for entry in entries:
        assert set(entry) == DIFFERENCE_KEYS, entry
        assert all(isinstance(v, str) and v.strip() for v in entry.values()), entry
        assert entry["clamd"] != entry["mailwarden"], entry


@pytest.mark.clamd
@pytest.mark.slow
def test_clamd_reference_matches_the_corpus_manifest(
    samples: list[Sample], clamd_results: dict[str, Outcome]
) -> None:
    """Guards against a vacuous comparison: clamd must find what the generators hid."""
    wrong = {
        s.label: clamd_results[s.label]
        for s in samples
        if s.expected is not None and clamd_results[s.label].kind != s.expected
    }
    infected = sum(1 for s in samples if s.expected == "infected")
    assert infected > 0
    assert not wrong, f"clamd disagrees with the generators: {wrong}"


@pytest.mark.clamd
@pytest.mark.slow
def test_engine_agrees_with_clamd(
    samples: list[Sample],
    clamd_results: dict[str, Outcome],
    engine: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    listed = {e["file"]: e for e in load_differences()}
    mismatches: list[str] = []
    explained: list[str] = []
    suspicious_only: list[str] = []
    seen_listed: set[str] = set()
    infected_both = 0
    for sample in samples:
        theirs = clamd_results[sample.label]
        ours = engine_outcome(engine.scan_bytes(sample.data, as_mail=sample.as_mail).to_dict())
        if ours.kind == "clean" and ours.suspicious:
            suspicious_only.append(f"{sample.label}: {', '.join(ours.suspicious)}")
        entry = listed.get(sample.label)
        if entry is not None:
            seen_listed.add(sample.label)
        if agree(theirs, ours):
            infected_both += theirs.kind == "infected"
            if entry is not None:
                mismatches.append(f"{sample.label}: listed as a difference but both agree now")
            continue
        line = (
            f"{sample.label}: clamd={theirs.label} {theirs.detail}".rstrip()
            + f" mailwarden={ours.label} {ours.detail}".rstrip()
        )
        if entry is not None and (entry["clamd"], entry["mailwarden"]) == (
            theirs.label,
            ours.label,
        ):
            explained.append(f"{line} ({entry['reason']})")
        else:
            mismatches.append(line)
    mismatches += [f"{name}: listed but not scanned" for name in sorted(set(listed) - seen_listed)]

    total = len(samples)
    summary = "\n".join(
        [
            f"messages: {total}, agree: {total - len(explained) - len(mismatches)} "
            f"({100 * (total - len(explained) - len(mismatches)) / total:.1f}%), "
            f"infected by both: {infected_both}, listed differences: {len(explained)}, "
            f"mismatches: {len(mismatches)}",
            *(f"  MISMATCH {m}" for m in mismatches),
            *(f"  listed   {m}" for m in explained),
            f"suspicious by our heuristics, clean for clamd: {len(suspicious_only)}",
            *(f"  {m}" for m in suspicious_only),
        ]
    )
    with capsys.disabled():
        print(f"\nengine against clamd\n{summary}")
    assert infected_both > 0, summary
    assert not mismatches, summary
