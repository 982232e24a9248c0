"""Hostile messages through the whole engine: each ends with a clear verdict,
bounded in memory, never an exception.

The extractor-level bombs live in tests/engine/unpack/test_bombs.py; here the
same kinds of input go through Engine.scan_bytes, as the daemon sees them.
"""

from __future__ import annotations

import io
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailwarden.engine import Engine, EngineSettings, Limits
from mailwarden.verdict import Status

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
GOLDEN = Path(__file__).parent.parent / "data" / "golden"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    cache = tmp_path_factory.mktemp("cache")
    return Engine.load(EngineSettings(bundled=True, cache_dir=cache))


def small_limits_engine(engine: Engine, **limits: float) -> Engine:
    settings = EngineSettings(bundled=True, cache_dir=None, limits=Limits(**limits))  # type: ignore[arg-type]
    return Engine(settings, engine.signatures, engine.yara)


def message(body_parts: list[bytes], boundary: bytes = b"B") -> bytes:
    out = [b"From: a@example.org\r\nTo: b@example.net\r\nSubject: x\r\nMIME-Version: 1.0\r\n"]
    out.append(b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n')
    for part in body_parts:
        out.append(b"--" + boundary + b"\r\n" + part + b"\r\n")
    out.append(b"--" + boundary + b"--\r\n")
    return b"".join(out)


def zip_bomb(levels: int, width: int, member_bytes: int) -> bytes:
    """42.zip-style: `width` copies of the level below, zeros at the bottom."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", b"\0" * member_bytes)
    data = buf.getvalue()
    for level in range(levels):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for i in range(width):
                zf.writestr(f"l{level}-{i}.zip", data)
        data = buf.getvalue()
    return data


def attachment(name: str, data: bytes) -> bytes:
    import base64

    return (
        b'Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="'
        + name.encode()
        + b'"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + base64.encodebytes(data).replace(b"\n", b"\r\n")
    )


def test_42_zip_style_bomb_is_unscanned_with_a_limit(engine: Engine) -> None:
    bomb = zip_bomb(levels=4, width=8, member_bytes=8 * 1024 * 1024)  # 32 GiB expanded
    raw = message([attachment("42.zip", bomb)])
    tracemalloc.start()
    verdict = small_limits_engine(engine, max_total_bytes=64_000_000).scan_bytes(raw)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert verdict.status is Status.UNSCANNED
    assert verdict.reason is not None and "limit" in verdict.reason
    assert peak < 128 * 1024 * 1024


def test_bomb_does_not_hide_an_infection_next_to_it(engine: Engine) -> None:
    bomb = zip_bomb(levels=2, width=4, member_bytes=8 * 1024 * 1024)
    raw = message([attachment("bomb.zip", bomb), attachment("eicar.txt", EICAR)])
    verdict = small_limits_engine(engine, max_total_bytes=40_000_000).scan_bytes(raw)
    # the ratio limit stops each bomb member, the walk goes on and finds EICAR
    assert verdict.status is Status.INFECTED
    assert verdict.name == "Eicar-Test-Signature"


def test_ten_thousand_parts(engine: Engine) -> None:
    # exactly the default limit of 10,000 objects: 9,999 text parts and the attachment
    parts = [b"Content-Type: text/plain\r\n\r\npart %d" % i for i in range(9_999)]
    parts.append(attachment("last.txt", EICAR))
    verdict = engine.scan_bytes(message(parts))
    assert verdict.status is Status.INFECTED  # the last part is still reached


def test_too_many_parts_is_unscanned(engine: Engine) -> None:
    parts = [b"Content-Type: text/plain\r\n\r\npart %d" % i for i in range(3_000)]
    verdict = small_limits_engine(engine, max_files=1_000).scan_bytes(message(parts))
    assert verdict.status is Status.UNSCANNED
    assert verdict.reason is not None and "1000 files" in verdict.reason


def test_hundred_megabyte_message(engine: Engine, tmp_path: Path) -> None:
    big = tmp_path / "big.eml"
    with big.open("wb") as fh:
        fh.write(b"From: a@example.org\r\nSubject: big\r\nContent-Type: text/plain\r\n\r\n")
        line = b"All work and no play makes Jack a dull boy. " * 2 + b"\r\n"
        for _ in range(100 * 1024 * 1024 // len(line)):
            fh.write(line)
        fh.write(EICAR + b"\r\n")
    verdict = engine.scan_file(big)
    assert verdict.status is Status.INFECTED
    assert verdict.size > 100_000_000


def test_ten_megabyte_header_block(engine: Engine) -> None:
    headers = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"y" * 100) for i in range(100_000))
    raw = b"From: a@example.org\r\n" + headers + b"Content-Type: text/plain\r\n\r\n" + EICAR
    verdict = engine.scan_bytes(raw)
    # the raw message is matched whatever the header parser skipped
    assert verdict.status is Status.INFECTED


def test_deep_nesting_is_unscanned(engine: Engine) -> None:
    inner = attachment("eicar.txt", b"harmless")
    raw = message([inner])
    for level in range(30):
        part = b"Content-Type: message/rfc822\r\n\r\n" + raw
        raw = message([part], boundary=b"level-%d" % level)
    verdict = engine.scan_bytes(raw)
    assert verdict.status is Status.UNSCANNED
    assert verdict.reason is not None and "depth" in verdict.reason


def test_time_limit_gives_unscanned(engine: Engine) -> None:
    parts = [b"Content-Type: text/plain\r\n\r\npart %d" % i for i in range(2_000)]
    verdict = small_limits_engine(engine, max_seconds=0.001).scan_bytes(message(parts))
    assert verdict.status is Status.UNSCANNED
    assert verdict.reason is not None and "time" in verdict.reason


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_golden_messages_always_get_a_verdict(engine: Engine, data: st.DataObject) -> None:
    names = sorted(GOLDEN.glob("*.eml"))
    raw = bytearray(data.draw(st.sampled_from(names)).read_bytes())
    for _ in range(data.draw(st.integers(1, 20))):
        op = data.draw(st.sampled_from(["flip", "cut", "dup"]))
        pos = data.draw(st.integers(0, max(0, len(raw) - 1)))
        if op == "flip" and raw:
            raw[pos] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del raw[pos : pos + data.draw(st.integers(1, 64))]
        else:
            raw[pos:pos] = raw[pos : pos + data.draw(st.integers(1, 64))]
    verdict = engine.scan_bytes(bytes(raw))
    assert verdict.status is not Status.ERROR, verdict.reason


def test_many_signature_candidates_stop_at_the_time_limit(tmp_path: Path) -> None:
    from mailwarden.engine.signatures import load_signatures

    # patterns whose first piece the payload repeats and whose last it never has
    firsts = [b"first-piece-%03d" % i for i in range(100)]
    ndb = "".join(f"Gap.{i}:0:*:{a.hex()}*{b'never-here'.hex()}\n" for i, a in enumerate(firsts))
    (tmp_path / "gaps.ndb").write_text(ndb)
    sigs = load_signatures([tmp_path], bundled=False)
    settings = EngineSettings(bundled=False, cache_dir=None, limits=Limits(max_seconds=0.0))
    payload = b"".join(firsts) * 50
    verdict = Engine(settings, sigs, None).scan_bytes(payload, as_mail=False)
    assert verdict.status is Status.UNSCANNED
    assert verdict.reason is not None and "time" in verdict.reason
    # with time to spare the same payload is scanned, and clean
    relaxed = EngineSettings(bundled=False, cache_dir=None)
    assert Engine(relaxed, sigs, None).scan_bytes(payload, as_mail=False).status is Status.CLEAN
