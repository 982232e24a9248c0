"""Text and HTML normalisation for target types 7 and 3."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.engine.filetype import FileKind
from mailwarden.engine.signatures import normalize
from mailwarden.engine.signatures.normalize import normalise_html, normalise_text, views


def test_text_lowercases_and_folds_whitespace() -> None:
    assert normalise_text(b"Hello \t\r\n  WORLD\x0b\x0cend") == b"hello world end"


def test_text_drops_controls_and_high_bytes() -> None:
    assert normalise_text(b"a\x00b\x01c\xe9d\x7f") == b"abcd\x7f"


def test_text_whitespace_separated_only_by_dropped_bytes_folds_once() -> None:
    assert normalise_text(b"a \x00 \xff b") == b"a b"


def test_text_spaces_across_chunk_boundaries_fold(monkeypatch: object) -> None:
    import pytest

    mp = pytest.MonkeyPatch()
    mp.setattr(normalize, "_CHUNK", 4)
    try:
        assert normalise_text(b"abc    def   GH") == b"abc def gh"
    finally:
        mp.undo()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_text_output_properties(data: bytes) -> None:
    out = normalise_text(data)
    assert b"  " not in out
    assert all(0x20 <= b <= 0x7F for b in out)
    assert out == out.lower()
    assert len(out) <= len(data)


def test_html_nocomment_view() -> None:
    nocomment, _ = normalise_html(
        b'<HTML><!-- gone --><P  Class = "X" >Hello   <B>World</B>  <script>var  A = 1;</script>'
        b"&amp;&#65;&#x42;</HTML>\n"
    )
    assert nocomment == b'<html><p class="x">hello <b>world</b><script>vara=1;</script>&ab</html>'


def test_html_notags_view_has_text_only() -> None:
    _, notags = normalise_html(
        b"<html><b>Bold</b>  text<script>hidden()</script><style>x{}</style>end"
    )
    assert notags == b" bold text end"


def test_html_unterminated_comment_runs_to_the_end() -> None:
    nocomment, _ = normalise_html(b"<p>a<!-- never closed <b>b</b>")
    assert nocomment == b"<p>a"


def test_html_declarations_are_dropped() -> None:
    nocomment, _ = normalise_html(b"<!DOCTYPE html><p>x</p>")
    assert nocomment == b"<p>x</p>"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_html_never_fails_and_never_grows_much(data: bytes) -> None:
    nocomment, notags = normalise_html(data)
    assert len(nocomment) <= len(data)
    assert len(notags) <= 2 * len(data) + 1


def test_views_per_kind() -> None:
    assert [name for name, _ in views(b"x", FileKind.BINARY)] == ["raw"]
    assert [name for name, _ in views(b"x", FileKind.TEXT)] == ["raw", "text"]
    assert [name for name, _ in views(b"<p>x", FileKind.HTML)] == ["raw", "html", "html"]
