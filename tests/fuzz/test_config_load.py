"""Fuzzing the configuration loader: any file gives a Config or a located ConfigError.

Inputs are TOML documents built from the schema (known and unknown sections and
keys, values of every TOML type including huge numbers, ``nan`` and ``inf``),
then sometimes mutated byte by byte so the syntax breaks too.  Property: the
loader returns a Config whose values all have their declared kind, or raises
ConfigError naming the file; nothing else escapes.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz.budget import fuzz
from mailwarden.config import SECTIONS, load_config
from mailwarden.errors import ConfigError

_SECTION_NAMES = [s.name for s in SECTIONS]
_KEYS = {s.name: [o.key for o in s.options] for s in SECTIONS}
_BARE = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,12}", fullmatch=True)

_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str),
    st.sampled_from(["nan", "inf", "-inf", "+nan", "1e308", "-0.0", "0.5", "1e-320"]),
    st.text(max_size=20).map(lambda t: '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    st.sampled_from(
        [
            '"500M"',
            '"16MiB"',
            '"1' + "0" * 400 + 'T"',
            '"9' * 1 + "9" * 30 + 'G"',
            '"0.000001k"',
            '""',
            '"-5M"',
            "1979-05-27T07:32:00Z",
            "07:32:00",
        ]
    ),
)


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_values = st.recursive(
    _scalars.map(_literal),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.dictionaries(_BARE, inner, max_size=3).map(
            lambda d: "{" + ", ".join(f"{k} = {v}" for k, v in d.items()) + "}"
        ),
    ),
    max_leaves=6,
)


@st.composite
def _documents(draw: st.DrawFn) -> str:
    lines: list[str] = []
    for _ in range(draw(st.integers(0, 4))):
        section = draw(st.one_of(st.sampled_from(_SECTION_NAMES), _BARE))
        header = f"[[{section}]]" if draw(st.integers(0, 9)) == 0 else f"[{section}]"
        lines.append(header)
        keys = _KEYS.get(section, [])
        for _ in range(draw(st.integers(0, 4))):
            key = draw(st.sampled_from(keys)) if keys and draw(st.booleans()) else draw(_BARE)
            lines.append(f"{key} = {draw(_values)}")
    text = "\n".join(lines) + "\n"
    if draw(st.integers(0, 3)) == 0:
        raw = bytearray(text.encode())
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, max(0, len(raw) - 1)))
            raw[at:at] = draw(st.binary(min_size=1, max_size=3))
        text = raw.decode("utf-8", "replace")
    return text


_KINDS = {
    "bool": bool,
    "int": int,
    "float": float,
    "size": int,
    "str": str,
    "list[str]": list,
    "list[table]": list,
}


def _check(path: Path) -> None:
    try:
        config = load_config(path)
    except ConfigError as exc:
        assert exc.file == str(path)
        assert str(exc).startswith(str(path))
        return
    for section in SECTIONS:
        for opt in section.options:
            value = config[section.name][opt.key]
            assert isinstance(value, _KINDS[opt.kind]), (section.name, opt.key, value)
            if opt.kind == "float":
                assert math.isfinite(value), (section.name, opt.key, value)


@fuzz(400)
@given(text=_documents())
def test_any_document_loads_or_names_the_file(
    text: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("conf") / "mailwarden.toml"
    path.write_text(text, encoding="utf-8")
    _check(path)


@fuzz(200)
@given(data=st.binary(max_size=400))
def test_any_bytes_load_or_name_the_file(
    data: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("conf") / "mailwarden.toml"
    path.write_bytes(data)
    _check(path)


# the values these tests found are replayed from corpus/config by test_corpus.py
