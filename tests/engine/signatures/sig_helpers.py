"""Helpers for the signature tests: write databases into a folder and load them."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailwarden.engine.signatures import SignatureSet, load_signatures
from mailwarden.engine.signatures.matchers import hyperscan_available

#: Both matchers where Hyperscan is installed, the fallback alone elsewhere.
MATCHERS = [
    pytest.param(
        "hyperscan", marks=pytest.mark.skipif(not hyperscan_available(), reason="no hyperscan")
    ),
    "aho",
]

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def write_dbs(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def load_dbs(
    folder: Path, files: dict[str, str], matcher: str = "aho", **kw: object
) -> SignatureSet:
    write_dbs(folder, files)
    return load_signatures([folder], bundled=False, matcher=matcher, **kw)  # type: ignore[arg-type]


def names(sigs: SignatureSet, data: bytes, kind: object, **kw: object) -> list[str]:
    return [m.name for m in sigs.match(data, kind, all_matches=True, **kw)]  # type: ignore[arg-type]
