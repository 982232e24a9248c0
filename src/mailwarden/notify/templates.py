"""Notification templates: Jinja2 in a sandbox, bundled defaults, local overrides.

Usage::

    book = TemplateBook(Path("/etc/mailwarden/notify"))
    subject, body = book.render("admin", "infected", "inbound", context)
    book.check()            # `config check`: raises ConfigError(file, line)

A template is plain text whose first line is ``Subject: ...`` and whose body
follows an empty line.  The first of these names that exists is used,
looking in the template folder first, then in the bundled set::

    ROLE-CATEGORY-DIRECTION.txt   recipient-infected-inbound.txt
    ROLE-CATEGORY.txt             recipient-infected.txt
    ROLE.txt                      recipient.txt   (bundled for every role)

Undefined variables are errors (``StrictUndefined``), so a misspelt name is
found by ``config check`` instead of rendering as nothing; ``check`` renders
every template for every category and direction with sample values.

SECURITY: templates are the administrator's files, rendered in Jinja2's
sandbox (no attribute access to Python internals); autoescape is off
because the output is text/plain, and the values passed in are made safe
by ``context.py``.  Template names are built from fixed words, never from
mail.
"""

from __future__ import annotations

import re
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailwarden.config.schema import CATEGORIES
from mailwarden.errors import ConfigError
from mailwarden.notify.settings import ROLES

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment

BUNDLED_DIR = Path(__file__).parent / "templates"
DIRECTIONS: tuple[str, ...] = ("inbound", "outbound", "unknown")
_NAME = re.compile(
    rf"^({'|'.join(ROLES)})(-({'|'.join(CATEGORIES)})(-({'|'.join(DIRECTIONS)}))?)?\.txt$"
)


class TemplateError(ConfigError):
    """A template that does not parse, uses an unknown name, or lacks its Subject line."""


def template_names(role: str, category: str, direction: str) -> list[str]:
    """The names tried for one notification, most specific first."""
    return [f"{role}-{category}-{direction}.txt", f"{role}-{category}.txt", f"{role}.txt"]


class TemplateBook:
    def __init__(self, folder: Path | None) -> None:
        self.folder = folder if folder is not None and folder.is_dir() else None
        self._env: SandboxedEnvironment | None = None

    @property
    def env(self) -> SandboxedEnvironment:
        # jinja2 is imported on first use: agents that never notify do not pay for it
        if self._env is None:
            from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined
            from jinja2.sandbox import SandboxedEnvironment

            loaders = [FileSystemLoader(str(BUNDLED_DIR))]
            if self.folder is not None:
                loaders.insert(0, FileSystemLoader(str(self.folder)))
            self._env = SandboxedEnvironment(
                loader=ChoiceLoader(loaders),
                undefined=StrictUndefined,
                autoescape=False,
                keep_trailing_newline=True,
                trim_blocks=True,
                lstrip_blocks=True,
            )
        return self._env

    def render(
        self, role: str, category: str, direction: str, context: dict[str, Any]
    ) -> tuple[str, str]:
        """(subject, body) of one notification; raises :class:`TemplateError`."""
        template = self.env.select_template(template_names(role, category, direction))
        text = template.render(role=role, **context)
        return split_subject(text, template.filename or template.name or "?")

    def check(self) -> list[str]:
        """Parse and render every template; return the files checked.

        Raises :class:`TemplateError` naming the file and line of the first problem.
        """
        from jinja2 import TemplateSyntaxError

        files: list[Path] = sorted(BUNDLED_DIR.glob("*.txt"))
        if self.folder is not None:
            try:
                local = sorted(self.folder.iterdir())
            except OSError as exc:
                raise TemplateError(f"cannot read: {exc.strerror}", file=str(self.folder)) from exc
            for path in local:
                if path.name.startswith("."):
                    continue
                if not _NAME.match(path.name):
                    raise TemplateError(
                        "not a notification template name (ROLE.txt, ROLE-CATEGORY.txt or "
                        "ROLE-CATEGORY-DIRECTION.txt with ROLE one of "
                        f"{', '.join(ROLES)})",
                        file=str(path),
                    )
                files.append(path)
        for path in files:
            try:
                source = path.read_text(encoding="utf-8")
                template = self.env.from_string(source)
            except TemplateSyntaxError as exc:
                raise TemplateError(
                    exc.message or "syntax error", file=str(path), line=exc.lineno
                ) from None
            except (OSError, UnicodeDecodeError) as exc:
                raise TemplateError(f"cannot read: {exc}", file=str(path)) from exc
            match = _NAME.match(path.name)
            if match is None:  # a bundled file that is not a template
                continue
            role = match.group(1)
            for category in [match.group(3)] if match.group(3) else list(CATEGORIES):
                for direction in [match.group(5)] if match.group(5) else list(DIRECTIONS):
                    context = sample_context(category, direction)
                    try:
                        split_subject(template.render(role=role, **context), str(path))
                    except TemplateError:
                        raise
                    except Exception as exc:
                        raise TemplateError(
                            f"{type(exc).__name__}: {exc}",
                            file=str(path),
                            line=_template_line(exc),
                        ) from exc
        return [str(p) for p in files]


def split_subject(text: str, filename: str) -> tuple[str, str]:
    """``Subject: ...`` line and body of a rendered template."""
    first, _, rest = text.partition("\n")
    name, colon, subject = first.partition(":")
    if not colon or name.strip().lower() != "subject":
        raise TemplateError("the first line must be 'Subject: ...'", file=filename, line=1)
    body = rest[1:] if rest.startswith("\n") else rest
    return " ".join(subject.split()), body


def _template_line(exc: BaseException) -> int | None:
    """The template line of a render error: Jinja2 puts template frames in the traceback."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == "<template>" or frame.filename.endswith(".txt"):
            line = frame.lineno
    return line


def sample_context(category: str, direction: str) -> dict[str, Any]:
    """Values shaped like ``context.mail_context``'s, for checking templates."""
    infected = category in ("infected", "suspicious")
    findings = (
        [{"name": "Eicar-Test-Signature", "part": "2/eicar.com", "engine": "clamav"}]
        if infected
        else []
    )
    return {
        "category": category,
        "direction": direction,
        "action": "quarantine",
        "reply": "250 2.0.0 Ok",
        "status": "Infected (Eicar-Test-Signature)" if infected else "Unscanned (encrypted)",
        "reason": "" if infected else "encrypted",
        "findings": findings,
        "names": [f["name"] for f in findings],
        "sender": "alice@example.com",
        "recipients": ["bob@example.org"],
        "recipients_more": 0,
        "held_recipients": ["bob@example.org"],
        "subject": "Invoice",
        "from_header": "Alice <alice@example.com>",
        "to_header": "bob@example.org",
        "date": "Fri, 27 Nov 2026 10:00:00 +0000",
        "message_id": "<1@example.com>",
        "quarantine_id": "0123456789abcdef0123456789abcdef",
        "queue_id": "4F2A81C0D3",
        "client_address": "192.0.2.1",
        "client_name": "mail.example.com",
        "helo": "mail.example.com",
        "agent": "smtp-filter",
        "point": "S1",
        "size": 1234,
        "host": "mx1.example.org",
        "released": False,
    }
