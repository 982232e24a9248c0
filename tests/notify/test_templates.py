"""Template choice per role, category and direction; `config check` finds broken templates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mailwarden.config.schema import CATEGORIES
from mailwarden.notify import TemplateBook, TemplateError
from mailwarden.notify.templates import DIRECTIONS, sample_context


@pytest.mark.parametrize("role", ["admin", "recipient", "sender"])
@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_bundled_templates_render_every_case(role: str, category: str, direction: str) -> None:
    subject, body = TemplateBook(None).render(
        role, category, direction, sample_context(category, direction)
    )
    assert category in subject
    assert "\n" not in subject
    assert "mx1.example.org" in body
    if category == "infected":
        assert "Eicar-Test-Signature" in subject
    if category == "unscanned":
        assert "encrypted" in body


def test_admin_body_names_the_quarantine_id_and_findings() -> None:
    ctx = sample_context("infected", "inbound")
    _, body = TemplateBook(None).render("admin", "infected", "inbound", ctx)
    assert "mailwarden quarantine release 0123456789abcdef0123456789abcdef" in body
    assert "Eicar-Test-Signature in 2/eicar.com (clamav)" in body
    assert "Invoice" in body


def test_the_most_specific_local_template_wins(tmp_path: Path) -> None:
    (tmp_path / "recipient.txt").write_text("Subject: generic {{ category }}\n\nG\n")
    (tmp_path / "recipient-infected.txt").write_text("Subject: virus\n\nV {{ direction }}\n")
    (tmp_path / "recipient-infected-outbound.txt").write_text("Subject: out\n\nO\n")
    book = TemplateBook(tmp_path)

    def render(category: str, direction: str) -> tuple[str, str]:
        return book.render("recipient", category, direction, sample_context(category, direction))

    assert render("infected", "outbound") == ("out", "O\n")
    assert render("infected", "inbound") == ("virus", "V inbound\n")
    assert render("suspicious", "inbound") == ("generic suspicious", "G\n")
    # roles without a local template keep the bundled one
    subject, _ = book.render("admin", "infected", "inbound", sample_context("infected", "inbound"))
    assert subject.startswith("[mailwarden] infected")


def test_a_missing_folder_means_the_bundled_set(tmp_path: Path) -> None:
    book = TemplateBook(tmp_path / "absent")
    assert len(book.check()) == 3


def test_check_names_file_and_line_of_a_syntax_error(tmp_path: Path) -> None:
    (tmp_path / "admin.txt").write_text("Subject: x\n\nline 3\n{% if %}\n")
    with pytest.raises(TemplateError) as err:
        TemplateBook(tmp_path).check()
    assert err.value.file == str(tmp_path / "admin.txt")
    assert err.value.line == 4


def test_check_names_file_and_line_of_an_undefined_variable(tmp_path: Path) -> None:
    (tmp_path / "sender-infected.txt").write_text("Subject: x\n\nok {{ sender }}\n{{ sendr }}\n")
    with pytest.raises(TemplateError) as err:
        TemplateBook(tmp_path).check()
    assert err.value.file == str(tmp_path / "sender-infected.txt")
    assert err.value.line == 4
    assert "sendr" in str(err.value)


def test_check_wants_the_subject_line(tmp_path: Path) -> None:
    (tmp_path / "admin.txt").write_text("Hello\n\nbody\n")
    with pytest.raises(TemplateError, match="Subject"):
        TemplateBook(tmp_path).check()


def test_check_refuses_an_unknown_template_name(tmp_path: Path) -> None:
    (tmp_path / "admn.txt").write_text("Subject: x\n\nbody\n")
    with pytest.raises(TemplateError, match="not a notification template name"):
        TemplateBook(tmp_path).check()


def test_the_sandbox_refuses_python_internals(tmp_path: Path) -> None:
    (tmp_path / "admin.txt").write_text(
        "Subject: x\n\n{{ sender.__class__.__mro__[1].__subclasses__() }}\n"
    )
    with pytest.raises(TemplateError, match=r"SecurityError|unsafe"):
        TemplateBook(tmp_path).check()


def test_config_check_reports_a_broken_template(tmp_path: Path) -> None:
    folder = tmp_path / "notify"
    folder.mkdir()
    (folder / "recipient.txt").write_text("Subject: {{ category }}\n\n{{ quarantine_idd }}\n")
    cfg = tmp_path / "mw.toml"
    cfg.write_text(f'[notify]\ntemplate_dir = "{folder}"\n')
    run = subprocess.run(
        [sys.executable, "-m", "mailwarden", "config", "check", "-q", "-c", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert f"{folder / 'recipient.txt'}:3" in run.stderr
    assert "quarantine_idd" in run.stderr
    (folder / "recipient.txt").write_text("Subject: {{ category }}\n\n{{ quarantine_id }}\n")
    ok = subprocess.run(
        [sys.executable, "-m", "mailwarden", "config", "check", "-q", "-c", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
