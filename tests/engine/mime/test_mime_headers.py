"""Header helpers: parse_headers, header_params (RFC 2045/2231), decode_rfc2047."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.engine.mime import decode_rfc2047, header_params, parse_headers


def test_parse_headers_unfolds_and_keeps_order() -> None:
    block = (
        b"Received: from a\r\n\tby b\r\nSubject: one\n two\r\n"
        b"X-Empty:\r\nContent-Type : text/plain\r\n\r\nbody: not a header\r\n"
    )
    assert parse_headers(block) == [
        ("Received", "from a\tby b"),
        ("Subject", "one two"),
        ("X-Empty", ""),
        ("Content-Type", "text/plain"),
    ]


def test_parse_headers_stops_at_first_non_header_line_and_skips_mbox_from() -> None:
    block = b"From someone Mon Jan 1\nFrom: a@b\nthis is body text\nTo: c@d\n"
    assert parse_headers(block) == [("From", "a@b")]


def test_parse_headers_decodes_utf8_and_falls_back_to_latin1() -> None:
    assert parse_headers("Subject: café\n".encode()) == [("Subject", "café")]
    assert parse_headers(b"Subject: caf\xe9\n") == [("Subject", "café")]


def test_header_params_quoted_escaped_and_unclosed() -> None:
    main, params = header_params(
        'Multipart/Mixed; Boundary="a;b \\"c\\""; charset=utf-8 ; name="open'
    )
    assert main == "Multipart/Mixed"
    assert params == {"boundary": 'a;b "c"', "charset": "utf-8", "name": "open"}


def test_header_params_first_occurrence_wins_and_junk_is_ignored() -> None:
    _, params = header_params("attachment; filename=a.txt; ; junk; filename=b.exe; =x")
    assert params == {"filename": "a.txt"}


def test_header_params_rfc2231_continuations_and_charset() -> None:
    _, params = header_params(
        "attachment; filename*1*=%20b.pdf; filename*0*=iso-8859-1'fr'r%E9sum%E9;"
        ' filename="fallback.pdf"'
    )
    assert params["filename"] == "résumé b.pdf"


def test_header_params_rfc2231_single_extended_value() -> None:
    _, params = header_params("inline; filename*=UTF-8''%E2%82%AC.txt")
    assert params == {"filename": "€.txt"}


def test_header_params_rfc2231_unknown_charset_falls_back() -> None:
    _, params = header_params("inline; filename*=x-nonexistent''%C3%A9.txt")
    assert params["filename"] == "é.txt"


def test_decode_rfc2047_b_and_q_words_joined() -> None:
    assert decode_rfc2047("=?utf-8?B?w6k=?= =?ISO-8859-1?Q?t=E9_x?= end") == "été x end"


def test_decode_rfc2047_leaves_plain_text_and_tolerates_breakage() -> None:
    assert decode_rfc2047("no words here") == "no words here"
    assert decode_rfc2047(b"=?utf-8?B?w6kuZXhl?=") == "é.exe"
    # missing padding, unknown charset, language suffix
    assert decode_rfc2047("=?utf-8?b?w6kuZXhl") == "=?utf-8?b?w6kuZXhl"
    assert decode_rfc2047("=?utf-8?b?w6kuZXh?=") == "é.ex"
    assert decode_rfc2047("=?x-unknown?q?abc?=") == "abc"
    assert decode_rfc2047("=?utf-8*en?q?a=C3=A9?=") == "aé"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_header_helpers_never_raise(value: str) -> None:
    main, params = header_params(value)
    assert isinstance(main, str)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())
    assert isinstance(decode_rfc2047(value), str)
    headers = parse_headers(value.encode("utf-8", "surrogatepass"))
    assert all(isinstance(n, str) and isinstance(v, str) for n, v in headers)
