"""Regenerate the golden messages in this folder: ``python make_golden.py``.

Each NAME.eml has a NAME.json beside it with the verdict the engine must give
with only the bundled signatures loaded: status, the first finding's name and
part (or null), and for unscanned messages a substring of the reason.  The
messages are written once and committed; this script documents how each was
made and must produce the same bytes again.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import quopri
import tarfile
import zipfile
from pathlib import Path

HERE = Path(__file__).parent
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
PE = b"MZ" + b"\0" * 58 + (64).to_bytes(4, "little") + b"PE\0\0" + b"\0" * 200
HEAD = (
    "From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\n"
    "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{n}@example.org>\r\n"
    "Subject: {n}\r\nMIME-Version: 1.0\r\n"
)


def b64(data: bytes) -> str:
    return base64.encodebytes(data).decode().replace("\n", "\r\n")


def mixed(name: str, parts: list[str], boundary: str = "BOUNDARY", close: bool = True) -> bytes:
    out = HEAD.format(n=name) + f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
    out += "preamble\r\n"
    for p in parts:
        out += f"--{boundary}\r\n{p}\r\n"
    if close:
        out += f"--{boundary}--\r\n"
    return out.encode()


def text(body: str = "Hello Bob,\r\nthe report is attached.\r\n") -> str:
    return f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"


def attach(filename: str, data: bytes, ctype: str = "application/octet-stream") -> str:
    return (
        f'Content-Type: {ctype}; name="{filename}"\r\n'
        f'Content-Disposition: attachment; filename="{filename}"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{b64(data)}"
    )


def zipped(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, d in members.items():
            info = zipfile.ZipInfo(n, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, d)
    return buf.getvalue()


def targz(members: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for n, d in members.items():
            info = tarfile.TarInfo(n)
            info.size = len(d)
            info.mtime = 1_767_225_600
            tf.addfile(info, io.BytesIO(d))
    return gzip.compress(raw.getvalue(), mtime=0)


def encrypted_zip() -> bytes:
    """A zip whose one member has the 'encrypted' flag set (traditional PKWARE)."""
    data = bytearray(zipped({"secret.doc": b"x" * 64}))
    # general purpose bit 0 in the local header (offset 6) and central header (+8)
    data[6] |= 1
    central = data.find(b"PK\x01\x02")
    data[central + 8] |= 1
    return bytes(data)


def pdf_with(payload: bytes) -> bytes:
    import zlib

    stream = zlib.compress(payload)
    return (
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
        + b"2 0 obj\n<< /Length "
        + str(len(stream)).encode()
        + b" /Filter /FlateDecode >>\n"
        + b"stream\n"
        + stream
        + b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )


def main() -> None:
    cases: dict[str, tuple[bytes, dict[str, object]]] = {}

    def case(
        name: str,
        data: bytes,
        status: str,
        finding: str | None = None,
        part: str | None = None,
        reason: str | None = None,
    ) -> None:
        cases[name] = (data, {"status": status, "name": finding, "part": part, "reason": reason})

    case(
        "clean-plain",
        (
            HEAD.format(n="clean-plain") + "Content-Type: text/plain\r\n\r\n"
            "Plain text, nothing else.\r\n"
        ).encode(),
        "clean",
    )
    case(
        "clean-attachments",
        mixed(
            "clean-attachments",
            [
                text(),
                attach("report.zip", zipped({"report.txt": b"figures" * 100})),
                attach("notes.txt", b"just notes\n", "text/plain"),
            ],
        ),
        "clean",
    )
    case(
        "eicar-raw-body",
        (HEAD.format(n="eicar-raw-body") + "Content-Type: text/plain\r\n\r\n").encode()
        + EICAR
        + b"\r\n",
        "infected",
        "Eicar-Test-Signature",
        "",
    )
    case(
        "eicar-attached",
        mixed("eicar-attached", [text(), attach("eicar.com", EICAR)]),
        "infected",
        "Eicar-Test-Signature",
        "2/eicar.com",
    )
    case(
        "eicar-in-zip",
        mixed(
            "eicar-in-zip",
            [
                text(),
                attach(
                    "invoice.zip",
                    zipped({"docs/readme.txt": b"hi", "eicar.txt": EICAR}),
                    "application/zip",
                ),
            ],
        ),
        "infected",
        "Eicar-Test-Signature",
        "2/invoice.zip/eicar.txt",
    )
    case(
        "eicar-in-nested-zip",
        mixed(
            "eicar-in-nested-zip",
            [
                text(),
                attach(
                    "outer.zip",
                    zipped({"inner.zip": zipped({"eicar.txt": EICAR})}),
                    "application/zip",
                ),
            ],
        ),
        "infected",
        "Eicar-Test-Signature",
        "2/outer.zip/inner.zip/eicar.txt",
    )
    case(
        "eicar-in-targz",
        mixed(
            "eicar-in-targz",
            [text(), attach("backup.tar.gz", targz({"dir/eicar.txt": EICAR}), "application/gzip")],
        ),
        "infected",
        "Eicar-Test-Signature",
        None,
    )
    qp = quopri.encodestring(EICAR).decode().replace("\n", "\r\n")
    case(
        "eicar-quoted-printable",
        mixed(
            "eicar-quoted-printable",
            [
                text(),
                (
                    'Content-Type: text/plain; name="e.txt"\r\n'
                    "Content-Transfer-Encoding: Quoted-Printable"
                    f'\r\nContent-Disposition: attachment; filename="e.txt"\r\n\r\n{qp}'
                ),
            ],
        ),
        "infected",
        "Eicar-Test-Signature",
        None,
    )
    uu = (
        "begin 644 eicar.com\r\n"
        + "".join(
            __import__("binascii").b2a_uu(EICAR[i : i + 45]).decode().replace("\n", "\r\n")
            for i in range(0, len(EICAR), 45)
        )
        + "`\r\nend\r\n"
    )
    case(
        "eicar-uuencoded",
        (
            HEAD.format(n="eicar-uuencoded") + "Content-Type: text/plain\r\n\r\n"
            "See below.\r\n\r\n" + uu
        ).encode(),
        "infected",
        "Eicar-Test-Signature",
        "1/eicar.com",
    )
    inner = mixed("inner", [text(), attach("eicar.com", EICAR)], boundary="INNER")
    case(
        "eicar-in-forwarded-message",
        mixed(
            "eicar-in-forwarded-message",
            [text(), "Content-Type: message/rfc822\r\n\r\n" + inner.decode()],
        ),
        "infected",
        "Eicar-Test-Signature",
        "2/2/eicar.com",
    )
    case(
        "eicar-missing-final-boundary",
        mixed("eicar-missing-final-boundary", [text(), attach("eicar.com", EICAR)], close=False),
        "infected",
        "Eicar-Test-Signature",
        "2/eicar.com",
    )
    case(
        "eicar-mixed-case-encoding",
        mixed(
            "eicar-mixed-case-encoding",
            [
                text(),
                (
                    'Content-Type: application/octet-stream; name="e.bin"\r\n'
                    "Content-Transfer-Encoding: BaSe64\r\n\r\n"
                    + b64(EICAR).replace("\r\n", "\r\n!!\r\n", 1)
                ),
            ],
        ),
        "infected",
        "Eicar-Test-Signature",
        "2/e.bin",
    )
    html = (
        b'<html><body><a href="data:application/octet-stream;base64,'
        + base64.b64encode(EICAR)
        + b'">x</a></body></html>'
    )
    case(
        "eicar-in-html-data-uri",
        mixed(
            "eicar-in-html-data-uri",
            ["Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(html)],
        ),
        "infected",
        "Eicar-Test-Signature",
        "1/data-1",
    )
    case(
        "eicar-in-pdf-stream",
        mixed(
            "eicar-in-pdf-stream",
            [text(), attach("paper.pdf", pdf_with(b"BT " + EICAR + b" ET"), "application/pdf")],
        ),
        "infected",
        "Eicar-Test-Signature",
        "2/paper.pdf/stream-2",
    )
    case(
        "encrypted-zip",
        mixed("encrypted-zip", [text(), attach("secret.zip", encrypted_zip(), "application/zip")]),
        "unscanned",
        reason="encrypted",
    )
    case(
        "double-extension",
        mixed("double-extension", [text(), attach("invoice.pdf.exe", PE)]),
        "suspicious",
        "Heuristics.DoubleExtension",
        "2/invoice.pdf.exe",
    )
    case(
        "rtlo-name",
        mixed(
            "rtlo-name",
            [
                text(),
                (
                    "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; "
                    "filename*=utf-8''invoice%E2%80%AEfdp.exe\r\n"
                    "Content-Transfer-Encoding: base64\r\n\r\n" + b64(b"plain bytes")
                ),
            ],
        ),
        "suspicious",
        "Heuristics.RTLO",
        "2/invoice?fdp.exe",
    )
    case(
        "executable-in-zip",
        mixed(
            "executable-in-zip",
            [text(), attach("tool.zip", zipped({"setup.exe": PE}), "application/zip")],
        ),
        "suspicious",
        "Heuristics.Archive.Executable",
        "2/tool.zip/setup.exe",
    )

    for name, (data, expected) in cases.items():
        (HERE / f"{name}.eml").write_bytes(data)
        (HERE / f"{name}.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main()
