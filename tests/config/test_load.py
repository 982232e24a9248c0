"""Configuration loading: defaults, merge order, and errors that name file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailwarden.config import defaults, load_config, parse_size, render
from mailwarden.config.schema import SECTIONS
from mailwarden.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_every_option_has_doc_and_default_renders_as_valid_toml(tmp_path: Path) -> None:
    text = render()
    for section in SECTIONS:
        assert f"[{section.name}]" in text
        for opt in section.options:
            assert opt.doc, f"{section.name}.{opt.key} has no documentation"
    # the rendered defaults are themselves a valid configuration equal to the defaults
    cfg = load_config(write(tmp_path / "m.toml", text))
    assert cfg.values == defaults().values


def test_missing_default_file_means_embedded_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAILWARDEN_CONFIG", raising=False)
    monkeypatch.setattr("mailwarden.config.load.DEFAULT_PATH", tmp_path / "absent.toml")
    cfg = load_config()
    assert cfg.files == []
    assert cfg["limits"]["max_depth"] == 16


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nope.toml")
    assert "nope.toml" in str(err.value)


def test_env_var_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    main = write(tmp_path / "m.toml", "[limits]\nmax_depth = 5\n")
    monkeypatch.setenv("MAILWARDEN_CONFIG", str(main))
    assert load_config()["limits"]["max_depth"] == 5


def test_conf_d_overrides_in_name_order(tmp_path: Path) -> None:
    main = write(tmp_path / "m.toml", "[limits]\nmax_depth = 5\nmax_files = 7\n")
    write(tmp_path / "conf.d" / "20-b.toml", "[limits]\nmax_depth = 9\n")
    write(tmp_path / "conf.d" / "10-a.toml", "[limits]\nmax_depth = 8\n")
    cfg = load_config(main)
    assert cfg["limits"]["max_depth"] == 9
    assert cfg["limits"]["max_files"] == 7
    assert cfg.origins[("limits", "max_depth")].endswith("20-b.toml:2")


def test_type_error_names_file_line_and_key(tmp_path: Path) -> None:
    main = write(
        tmp_path / "m.toml", "# c\n[engine]\nbundled = true\n\n[limits]\nmax_depth = 'x'\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(main)
    e = err.value
    assert (e.file, e.line, e.key) == (str(main), 6, "limits.max_depth")
    assert f"{main}:6" in str(e)


def test_unknown_key_and_section_are_errors(tmp_path: Path) -> None:
    main = write(tmp_path / "m.toml", "[limits]\nmax_dept = 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(main)
    assert err.value.line == 2 and err.value.key == "limits.max_dept"
    main = write(tmp_path / "n.toml", "[limit]\nmax_depth = 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(main)
    assert err.value.line == 1 and "unknown section" in str(err.value)


def test_syntax_error_has_line(tmp_path: Path) -> None:
    main = write(tmp_path / "m.toml", "[limits]\nmax_depth = = 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(main)
    assert err.value.line == 2


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[limits]\nmax_depth = 0\n", "at least"),
        ("[engine]\nmatcher = 'fast'\n", "one of"),
        ("[engine]\ndatabases = 'x'\n", "list of strings"),
        ("[heuristics]\nscripts = 1\n", "true or false"),
        ("[limits]\nmax_total_bytes = '12 parsecs'\n", "size"),
    ],
)
def test_value_checks(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path / "m.toml", text))
    assert problem in str(err.value)
    assert err.value.line is not None


@pytest.mark.parametrize(
    ("value", "expected"),
    [(123, 123), ("500M", 500_000_000), ("16MiB", 16 * 1024 * 1024), ("1g", 10**9), ("2KiB", 2048)],
)
def test_parse_size(value: object, expected: int) -> None:
    assert parse_size(value) == expected


def test_size_option_accepts_units(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / "m.toml", "[limits]\nmax_total_bytes = '2G'\n"))
    assert cfg["limits"]["max_total_bytes"] == 2_000_000_000
