"""The manifest format: strict parsing, names that cannot be paths, the HMAC."""

from __future__ import annotations

import pytest

from mailwarden.update.manifest import Entry, Manifest, ManifestError, parse, render

DIGEST = "ab" * 32
KEY = b"k" * 40
GOOD = Manifest(1_800_000_000, (Entry("main.cvd", 10, DIGEST), Entry("daily.cld", 5, "cd" * 32)))


def test_round_trip_and_order() -> None:
    text = render(GOOD)
    assert text.startswith(b"mailwarden-manifest 1\ncreated 1800000000\nfile ")
    assert text.index(b"daily.cld") < text.index(b"main.cvd")
    parsed = parse(text)
    assert parsed.created == GOOD.created and parsed.same_files(GOOD) and not parsed.signed


def test_signed_manifest_verifies_with_the_key() -> None:
    parsed = parse(render(GOOD, KEY), key=KEY)
    assert parsed.signed and parsed.same_files(GOOD)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"", "line 1"),
        (b"mailwarden-manifest 2\ncreated 1\nfile " + DIGEST.encode() + b" 1 a.hdb\n", "line 1"),
        (b"mailwarden-manifest 1\nfile " + DIGEST.encode() + b" 1 a.hdb\n", "no 'created'"),
        (b"mailwarden-manifest 1\ncreated 1\n", "lists no files"),
        (b"mailwarden-manifest 1\ncreated x\n", "line 2"),
        (b"mailwarden-manifest 1\ncreated 1\nfile abc 1 a.hdb\n", "line 3"),
        (b"mailwarden-manifest 1\ncreated 1\nfile " + DIGEST.encode() + b" 1 ../a.hdb\n", "plain"),
        (b"mailwarden-manifest 1\ncreated 1\nfile " + DIGEST.encode() + b" 1 a/b.hdb\n", "plain"),
        (b"mailwarden-manifest 1\ncreated 1\nfile " + DIGEST.encode() + b" 1 MANIFEST\n", "plain"),
        (b"mailwarden-manifest 1\ncreated 1\nfile " + DIGEST.encode() + b" 1 .hidden\n", "plain"),
        (
            b"mailwarden-manifest 1\ncreated 1\nfile "
            + DIGEST.encode()
            + b" 1 a.hdb\nfile "
            + DIGEST.encode()
            + b" 2 a.hdb\n",
            "twice",
        ),
        (b"mailwarden-manifest 1\ncreated 1\nsomething else\n", "unknown record"),
        (b"mailwarden-manifest 1\ncreated 1\nfile " + DIGEST.encode() + b" 1 a.hdb", "newline"),
        (b"mailwarden-manifest 1\ncreated 1\n\xff\n", "ASCII"),
        (b"x" * (1024 * 1024 + 1), "larger than"),
    ],
)
def test_malformed_manifests_are_refused_with_the_line(text: bytes, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse(text, origin="mirror/MANIFEST")


def test_a_changed_byte_breaks_the_signature() -> None:
    text = render(GOOD, KEY).replace(b" 10 main.cvd", b" 11 main.cvd")
    with pytest.raises(ManifestError, match="does not verify"):
        parse(text, key=KEY)


def test_another_key_does_not_verify() -> None:
    with pytest.raises(ManifestError, match="does not verify"):
        parse(render(GOOD, KEY), key=b"x" * 40)


def test_an_unsigned_manifest_is_refused_when_a_key_is_configured() -> None:
    with pytest.raises(ManifestError, match="not signed"):
        parse(render(GOOD), key=KEY)


def test_nothing_may_follow_the_signature() -> None:
    text = render(GOOD, KEY) + b"file " + DIGEST.encode() + b" 1 evil.hdb\n"
    with pytest.raises(ManifestError, match="nothing may follow"):
        parse(text, key=KEY)
