"""Write the golden MIME messages of this folder and what the splitter must yield for each.

Run from anywhere: ``python tests/data/mime/make_mime_golden.py``.  Each case is
built from its payloads, and the expectation (labels, names, declared types,
sha256 of the decoded content, unscanned notes) is computed from those payloads,
not from running the splitter, so the golden test checks the splitter against
intent.  The ``.eml`` files are committed; regenerate only to add a case.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + bytes(range(256)) * 3


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _b64(data: bytes, width: int = 76, eol: bytes = b"\r\n") -> bytes:
    text = base64.b64encode(data)
    return eol.join(text[i : i + width] for i in range(0, len(text), width))


def _child(label: str, data: bytes, name: str | None = None, ctype: str | None = None) -> dict:
    return {"label": label, "name": name, "content_type": ctype, "sha256": _sha(data)}


def cases() -> dict[str, tuple[bytes, dict]]:
    out: dict[str, tuple[bytes, dict]] = {}

    body = b"Hello world\r\nsecond line\r\n"
    out["plain_single_part"] = (
        b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\n" + body,
        {"children": [_child("1", body)]},
    )

    # mbox "From " line, bare LF, mixed-case CTE, base64 without padding and with junk
    enc = _b64(EXE, 60, b"\n").rstrip(b"=") + b"\n!*#~ \t\n"
    out["mbox_lf_base64_unpadded"] = (
        b"From sender@example.org Mon Jan  1 00:00:00 2024\n"
        b"From: sender@example.org\nSubject: unpadded\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/mixed; boundary=abc\n\n"
        b"--abc\nContent-Type: text/plain\n\nsee attachment\n"
        b"--abc\nContent-Type: application/x-msdownload\n"
        b"Content-Disposition: attachment; filename=setup.exe\n"
        b"Content-Transfer-Encoding: BaSe64\n\n" + enc + b"--abc--\n",
        {
            "children": [
                _child("1", b"see attachment", ctype="text/plain"),
                _child("2/setup.exe", EXE, "setup.exe", "application/x-msdownload"),
            ]
        },
    )

    out["preamble_epilogue"] = (
        b'From: a@example.org\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        b"This is a preamble.\r\n--b1\r\n\r\nimplicit text\r\n--b1\r\n"
        b"Content-Type: text/html\r\n\r\n<p>hi</p>\r\n--b1--\r\nThis is the epilogue.\r\n",
        {
            "children": [
                _child("1", b"implicit text"),
                _child("2", b"<p>hi</p>", ctype="text/html"),
            ]
        },
    )

    out["missing_close_delimiter"] = (
        b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n"
        b"--zz\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--zz\r\n"
        b"Content-Type: application/octet-stream; name=tail.bin\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + _b64(EXE) + b"\r\n",
        {
            "children": [
                _child("1", b"first", ctype="text/plain"),
                _child("2/tail.bin", EXE, "tail.bin", "application/octet-stream"),
            ]
        },
    )

    odd = b"=_odd 'b(o)u+n,d/a:r?y"
    out["odd_boundary_folded"] = (
        b'From: a@example.org\r\nContent-Type: multipart/mixed;\r\n\tboundary="'
        + odd
        + b'"\r\n\r\n--'
        + odd
        + b"\r\nContent-Type: text/plain\r\n\r\nodd one\r\n--"
        + odd
        + b"  \r\nContent-Type: text/plain\r\n\r\nodd two\r\n--"
        + odd
        + b"--\r\n",
        {
            "children": [
                _child("1", b"odd one", ctype="text/plain"),
                _child("2", b"odd two", ctype="text/plain"),
            ]
        },
    )

    # the inner multipart reuses the outer boundary: its parts become the outer's
    out["nested_same_boundary"] = (
        b'From: a@example.org\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\none\r\n"
        b'--B\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n'
        b'--B\r\nContent-Type: application/octet-stream; name="a.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + _b64(EXE) + b"\r\n--B--\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\nthree\r\n--B--\r\n",
        {
            "children": [
                _child("1", b"one", ctype="text/plain"),
                _child("3/a.bin", EXE, "a.bin", "application/octet-stream"),
                _child("4", b"three", ctype="text/plain"),
            ]
        },
    )

    euro = "€ rapport.pdf"
    out["rfc2231_rfc2047_names"] = (
        b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=n\r\n\r\n"
        b"--n\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment;\r\n"
        b" filename*0*=utf-8''%E2%82%AC%20rap;\r\n filename*1=\"port.pdf\"\r\n\r\n%PDF-1.4 one\r\n"
        b'--n\r\nContent-Type: application/zip; name="=?ISO-8859-1?Q?r=E9sum=E9?=.zip"\r\n\r\n'
        b"PK zip bytes\r\n"
        b"--n\r\nContent-Type: text/plain\r\n"
        b'Content-Disposition: attachment; filename="=?utf-8?B?w6l0w6kudHh0?="\r\n\r\n'
        b"summer\r\n--n--\r\n",
        {
            "children": [
                _child(f"1/{euro}", b"%PDF-1.4 one", euro, "application/pdf"),
                _child("2/résumé.zip", b"PK zip bytes", "résumé.zip", "application/zip"),
                _child("3/été.txt", b"summer", "été.txt", "text/plain"),
            ]
        },
    )

    out["qp_and_8bit"] = (
        b"From: a@example.org\r\nContent-Type: multipart/alternative; boundary=q\r\n\r\n"
        b"--q\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: Quoted-Printable\r\n\r\n"
        b"caf=C3=A9 au l=\r\nait =3D good=ZZ\r\n"
        b"--q\r\nContent-Type: text/plain; charset=latin-1\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\ncaf\xe9\r\n--q--\r\n",
        {
            "children": [
                _child("1", "café au lait = good=ZZ".encode(), ctype="text/plain"),
                _child("2", b"caf\xe9", ctype="text/plain"),
            ]
        },
    )

    inner = (
        b"From: inner@example.org\r\nSubject: forwarded\r\n"
        b"Content-Type: text/plain\r\n\r\ninner body\r\n"
    )
    out["nested_rfc822"] = (
        b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n"
        b"--outer\r\nContent-Type: text/plain\r\n\r\nsee forwarded\r\n"
        b"--outer\r\nContent-Type: message/rfc822\r\n"
        b"Content-Disposition: attachment; filename=fwd.eml\r\n\r\n" + inner + b"\r\n--outer--\r\n",
        {
            "children": [
                _child("1", b"see forwarded", ctype="text/plain"),
                _child("2/fwd.eml", inner, "fwd.eml", "message/rfc822"),
            ]
        },
    )

    out["nested_multipart_sections"] = (
        b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=L1\r\n\r\n"
        b"--L1\r\nContent-Type: multipart/alternative; boundary=L2\r\n\r\n"
        b"--L2\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
        b"--L2\r\nContent-Type: text/html\r\n\r\n<b>html</b>\r\n--L2--\r\n"
        b"--L1\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="x.exe"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + _b64(EXE) + b"\r\n--L1--\r\n",
        {
            "children": [
                _child("1.1", b"plain", ctype="text/plain"),
                _child("1.2", b"<b>html</b>", ctype="text/html"),
                _child("2/x.exe", EXE, "x.exe", "application/octet-stream"),
            ]
        },
    )

    # a part whose headers run straight into the body, and mixed line ends
    out["no_separator_mixed_eol"] = (
        b"From: a@example.org\nContent-Type: multipart/mixed; boundary=s\r\n\r\n"
        b"--s\r\nContent-Type: text/plain\nno blank line here\r\n"
        b"--s\nContent-Type: text/plain\r\n\nafter bare LF\n--s--\n",
        {
            "children": [
                _child("1", b"no blank line here", ctype="text/plain"),
                _child("2", b"after bare LF", ctype="text/plain"),
            ]
        },
    )

    partial = b"From: x@example.org\r\nSubject: part 1 of 2\r\n\r\nhalf a message\r\n"
    out["message_partial"] = (
        b"From: a@example.org\r\n"
        b'Content-Type: message/partial; id="abc@example.org"; number=1; total=2\r\n\r\n' + partial,
        {
            "children": [_child("1", partial, ctype="message/partial")],
            "unscanned": [["1", "message/partial"]],
        },
    )

    out["missing_boundary_guessed"] = (
        b"From: a@example.org\r\nContent-Type: multipart/mixed\r\n\r\n"
        b"--guess\r\nContent-Type: text/plain\r\n\r\nfound\r\n--guess--\r\n",
        {"children": [_child("1", b"found", ctype="text/plain")]},
    )
    return out


def main() -> None:
    for name, (eml, expected) in cases().items():
        (HERE / f"{name}.eml").write_bytes(eml)
        (HERE / f"{name}.json").write_text(
            json.dumps(expected, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )


if __name__ == "__main__":
    main()
