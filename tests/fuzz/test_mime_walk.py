"""Fuzzing the MIME walker with generated message trees.

Messages are built from a grammar: multiparts (any subtype, boundaries with
the characters RFC 2046 allows and some it does not), message/rfc822, leaves
in 7bit, quoted-printable, base64 or uuencode, hostile filenames, LF or CRLF
line ends, preamble and epilogue junk, missing closing boundaries.  One leaf
may carry EICAR, encoded as its part says.

Properties: a message whose tree hides EICAR in a base64, quoted-printable or
uuencoded leaf is found infected (so the walk really decoded its way there);
any generated message, broken or not, gets a verdict other than ``error``.
"""

from __future__ import annotations

import base64
import binascii
import quopri
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz.budget import fuzz
from mailwarden.engine import Engine, EngineSettings
from mailwarden.verdict import Status

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

_FILENAMES = st.one_of(
    st.sampled_from(
        [
            "../../etc/passwd",
            "/etc/shadow",
            "a\x00b.exe",
            "report\u202efdp.exe",
            "=?utf-8?b?Li4vLi4vZXRjL3Bhc3N3ZA==?=",
            "x" * 500,
        ]
    ),
    st.text(alphabet=st.characters(blacklist_characters='"\r\n'), max_size=30),
)
_BOUNDARY = st.from_regex(r"[0-9A-Za-z'()+_,./:=? -]{1,69}[0-9A-Za-z'()+_,./:=?-]", fullmatch=True)


@dataclass
class Leaf:
    encoding: str
    content_type: str
    filename: str | None
    payload: bytes


@dataclass
class Multi:
    subtype: str
    boundary: str
    children: list[Node]
    closed: bool
    preamble: bytes


@dataclass
class Rfc822:
    inner: Node


Node = Leaf | Multi | Rfc822

_leaves = st.builds(
    Leaf,
    st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "BASE64"]),
    st.sampled_from(["text/plain", "application/octet-stream", "image/jpeg", "text/html", "x/y"]),
    st.one_of(st.none(), _FILENAMES),
    st.binary(max_size=200),
)


def _trees() -> st.SearchStrategy[Node]:
    return st.recursive(
        _leaves,
        lambda inner: st.one_of(
            st.builds(
                Multi,
                st.sampled_from(["mixed", "alternative", "related", "signed", "x-unknown"]),
                _BOUNDARY,
                st.lists(inner, min_size=1, max_size=4),
                st.booleans(),
                st.binary(max_size=30),
            ),
            st.builds(Rfc822, inner),
        ),
        max_leaves=12,
    )


def _encode(leaf: Leaf) -> bytes:
    enc = leaf.encoding.lower()
    if enc == "base64":
        return base64.encodebytes(leaf.payload)
    if enc == "quoted-printable":
        return quopri.encodestring(leaf.payload)
    if enc == "x-uuencode":
        name = b"file"
        lines = [binascii.b2a_uu(leaf.payload[i : i + 45]) for i in range(0, len(leaf.payload), 45)]
        return b"begin 644 " + name + b"\n" + b"".join(lines) + b"`\nend\n"
    return leaf.payload


def _render(node: Node) -> bytes:
    if isinstance(node, Leaf):
        head = b"Content-Type: " + node.content_type.encode()
        if node.filename is not None:
            head += b'; name="' + node.filename.encode("utf-8", "surrogatepass") + b'"'
            head += b'\nContent-Disposition: attachment; filename="'
            head += node.filename.encode("utf-8", "surrogatepass") + b'"'
        encoding = node.encoding if node.encoding != "x-uuencode" else "7bit"
        head += b"\nContent-Transfer-Encoding: " + encoding.encode()
        return head + b"\n\n" + _encode(node)
    if isinstance(node, Rfc822):
        return b"Content-Type: message/rfc822\n\nSubject: inner\n" + _render(node.inner)
    boundary = node.boundary.encode()
    out = [
        b"Content-Type: multipart/" + node.subtype.encode() + b'; boundary="' + boundary + b'"\n\n'
    ]
    out.append(node.preamble + b"\n")
    for child in node.children:
        out.append(b"--" + boundary + b"\n" + _render(child) + b"\n")
    if node.closed:
        out.append(b"--" + boundary + b"--\n")
    return b"".join(out)


def _leaves_of(node: Node) -> list[Leaf]:
    if isinstance(node, Leaf):
        return [node]
    if isinstance(node, Rfc822):
        return _leaves_of(node.inner)
    return [leaf for child in node.children for leaf in _leaves_of(child)]


def _message(tree: Node, crlf: bool) -> bytes:
    raw = b"From: a@example.org\nTo: b@example.net\nSubject: fuzz\nMIME-Version: 1.0\n" + _render(
        tree
    )
    return raw.replace(b"\n", b"\r\n") if crlf else raw


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return Engine.load(EngineSettings(bundled=True, cache_dir=tmp_path_factory.mktemp("cache")))


@fuzz(300)
@given(tree=_trees(), crlf=st.booleans(), pick=st.integers(0, 1000), data=st.data())
def test_eicar_encoded_in_any_leaf_is_found(
    engine: Engine, tree: Node, crlf: bool, pick: int, data: st.DataObject
) -> None:
    leaves = _leaves_of(tree)
    target = leaves[pick % len(leaves)]
    target.encoding = data.draw(st.sampled_from(["base64", "quoted-printable", "x-uuencode"]))
    target.payload = EICAR
    # boundaries that are prefixes of each other are legal but ambiguous: keep them apart
    _unique_boundaries(tree)
    raw = _message(tree, crlf)
    assert EICAR not in raw or target.encoding == "quoted-printable"
    verdict = engine.scan_bytes(raw)
    assert verdict.status is Status.INFECTED, (raw[:2000], verdict)


def _unique_boundaries(node: Node, seen: list[str] | None = None) -> None:
    seen = [] if seen is None else seen
    if isinstance(node, Multi):
        node.boundary = f"b{len(seen)}-{node.boundary}"
        seen.append(node.boundary)
        for child in node.children:
            _unique_boundaries(child, seen)
    elif isinstance(node, Rfc822):
        _unique_boundaries(node.inner, seen)


@fuzz(300)
@given(tree=_trees(), crlf=st.booleans())
def test_any_generated_message_gets_a_verdict(engine: Engine, tree: Node, crlf: bool) -> None:
    raw = _message(tree, crlf)
    verdict = engine.scan_bytes(raw)
    assert verdict.status is not Status.ERROR, verdict.reason
