"""Body patterns compiled ahead in a second process: same load, same errors."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sig_helpers import write_dbs

from mailwarden.engine.signatures import load_signatures, precompile
from mailwarden.engine.signatures import loader as loader_mod
from mailwarden.engine.signatures.hexsig import compile_hexsig, is_plain
from mailwarden.engine.signatures.matchers import hyperscan_available
from mailwarden.engine.signatures.tables import to_parts
from mailwarden.errors import SignatureError


def _complex(rng: random.Random) -> str:
    """A hex pattern with wildcards, gaps and alternatives."""

    def run() -> str:
        return rng.randbytes(rng.randint(3, 8)).hex()

    pieces = [run()]
    for _ in range(rng.randint(1, 4)):
        pieces.append(
            rng.choice(["??", "{2-6}", "*", "(4142|4344)", "a?", "{3}", "[1-4]", "!(00|ff)"])
        )
        pieces.append(run())
    return "".join(pieces)


def _databases(n: int, seed: int = 7) -> dict[str, str]:
    rng = random.Random(seed)
    ndb = []
    for i in range(n):
        pattern = _complex(rng) if i % 3 else rng.randbytes(12).hex()
        ndb.append(f"Test.Body-{i}:{rng.choice([0, 0, 1, 3, 7])}:*:{pattern}")
    ndb.insert(5, "Test.Macro:0:$12:6162636465")  # skipped, counted
    ldb = [
        f"Test.Logic-{i};Target:0;0&1;{_complex(rng)}::i;{rng.randbytes(6).hex()}::wa"
        for i in range(n // 10)
    ]
    return {"a.ndb": "\n".join(ndb) + "\n", "b.ldb": "\n".join(ldb) + "\n"}


def _load(folder: Path, cache: Path) -> tuple[object, object]:
    sigs = load_signatures([folder], bundled=False, matcher="aho", cache_dir=cache)
    return to_parts(sigs._t), (sigs.report.counts, sigs.report.skipped)


def test_load_is_the_same_with_and_without_the_second_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_dbs(tmp_path / "db", _databases(3000))
    hits: list[int] = []
    real_close = precompile.Precompiled.close

    def close(self: precompile.Precompiled) -> None:
        hits.append(self.hits)
        real_close(self)

    monkeypatch.setattr(precompile.Precompiled, "close", close)
    monkeypatch.setattr(loader_mod, "PRECOMPILE_FROM", 1 << 40)
    alone = _load(folder, tmp_path / "c1")
    assert hits == []
    monkeypatch.setattr(loader_mod, "PRECOMPILE_FROM", 0)
    helped = _load(folder, tmp_path / "c2")
    assert len(hits) == 1
    assert helped == alone


def test_precompiled_patterns_equal_the_parsers_own(tmp_path: Path) -> None:
    dbs = _databases(400)
    folder = write_dbs(tmp_path, dbs)
    pre = precompile.start([(folder / "a.ndb", "ndb"), (folder / "b.ldb", "ldb")])
    assert pre is not None
    deadline = time.monotonic() + 60
    while pre._fd >= 0 and time.monotonic() < deadline:  # read until the child is done
        pre._poll()
        time.sleep(0.01)
    assert pre._proc.wait(timeout=10) == 0
    wanted = [line.split(":")[3] for line in dbs["a.ndb"].splitlines() if "$" not in line]
    taken = 0
    for text in wanted:
        got = pre.take(text, "")
        if got is not None:
            taken += 1
            assert got == compile_hexsig(text)
    for line in dbs["b.ldb"].splitlines():
        sub = line.split(";")[3]
        text, _, modifiers = sub.rpartition("::")
        got = pre.take(text, modifiers)
        assert got == compile_hexsig(text, modifiers)
    pre.close()
    # every complex pattern came from the child (the first poll is after a few calls)
    complex_ = [t for t in wanted if not is_plain(t)]
    assert taken >= len(complex_) - precompile._POLL_EVERY


def test_errors_name_the_same_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dbs = _databases(2000)
    lines = dbs["a.ndb"].splitlines()
    lines[1900] = "Broken.Body:0:*:4142{9-3}4344"
    dbs["a.ndb"] = "\n".join(lines) + "\n"
    folder = write_dbs(tmp_path, dbs)
    monkeypatch.setattr(loader_mod, "PRECOMPILE_FROM", 0)
    with pytest.raises(SignatureError, match=r"a\.ndb:1901:"):
        load_signatures([folder], bundled=False, matcher="aho")


@pytest.mark.parametrize(
    "script",
    [
        "import sys; sys.exit(3)",  # dies at once
        "import sys; sys.stdout.buffer.write(b'\\xff' * 4096)",  # not our framing
        "import sys; sys.stdout.buffer.write(b'\\x00\\x00\\x00\\x05short')",  # short frame
    ],
)
def test_a_broken_child_only_costs_time(script: str, tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    proc.wait(timeout=30)
    pre = precompile.Precompiled(proc)
    for _ in range(3 * precompile._POLL_EVERY):
        assert pre.take("4142??4344", "") is None
    pre.close()


@pytest.mark.skipif(not hyperscan_available(), reason="no hyperscan")
@pytest.mark.parametrize("broken", ["body", "hash"])
def test_a_failed_load_leaves_no_child_behind(
    broken: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailwarden.engine.signatures import matchers

    started: list[subprocess.Popen[bytes]] = []

    class Recorded(subprocess.Popen):  # type: ignore[type-arg]
        def __init__(self, *args: object, **kw: object) -> None:
            super().__init__(*args, **kw)  # type: ignore[arg-type]
            started.append(self)

    monkeypatch.setattr(matchers.subprocess, "Popen", Recorded)
    monkeypatch.setattr(loader_mod, "PRECOMPILE_FROM", 0)
    monkeypatch.setattr(matchers, "CHILD_COMPILE_FROM", 100)
    dbs = _databases(1500)
    if broken == "body":
        dbs["a.ndb"] += "Broken.Body:0:*:4142{9-3}4344\n"
        where = r"a\.ndb:1502:"
    else:
        # the hash lists parse while the Hyperscan children compile
        dbs["c.hdb"] = "0123456789abcdef0123456789abcdef:12x:Broken.Hash\n"
        where = r"c\.hdb:1:"
    folder = write_dbs(tmp_path, dbs)
    with pytest.raises(SignatureError, match=where):
        load_signatures([folder], bundled=False, matcher="hyperscan")
    # the compile child started in advance, the second parser and any other
    # compile child: all ended
    assert len(started) >= 2
    assert all(proc.returncode is not None for proc in started)


def test_patterns_inside_a_container_are_compiled_ahead_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_cvd import _container

    dbs = _databases(600, seed=11)
    folder = tmp_path / "db"
    folder.mkdir()
    (folder / "daily.cvd").write_bytes(
        _container({"daily.ndb": dbs["a.ndb"].encode(), "daily.ldb": dbs["b.ldb"].encode()})
    )
    pre = precompile.start([(folder / "daily.cvd", "cvd")])
    assert pre is not None
    deadline = time.monotonic() + 60
    while pre._fd >= 0 and time.monotonic() < deadline:
        pre._poll()
        time.sleep(0.01)
    wanted = [line.split(":")[3] for line in dbs["a.ndb"].splitlines() if "$" not in line]
    complex_ = [t for t in wanted if not is_plain(t)]
    assert all(pre._ready.get((t, "")) == compile_hexsig(t) for t in complex_)
    pre.close()
    # and a load through the container is the same with and without it
    monkeypatch.setattr(loader_mod, "PRECOMPILE_FROM", 1 << 40)
    alone = _load(folder, tmp_path / "c1")
    monkeypatch.setattr(loader_mod, "PRECOMPILE_FROM", 0)
    assert _load(folder, tmp_path / "c2") == alone
