"""Secrets never reach a log line, a printed line or an exception message.

A static check over ``src/``: no call to a logger (``log.*``, ``logger.*``,
``logging.*``), ``print`` or ``warnings.warn``, and no exception raised, takes
an argument that names a secret (the release secret, the web password or its
hash, a session or CSRF token, the PostgreSQL DSN or password).  Messages that
mention such a thing do it in words; values stay out.  Then the paths that do
handle secrets are run with every logger at DEBUG and their output searched
for the secret itself.
"""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path

import pytest

from mailwarden.actions.release import add_mark, check_mark, load_secret
from mailwarden.config import load_config
from mailwarden.errors import ConfigError
from mailwarden.store import QuarantineId

SRC = Path(__file__).resolve().parents[2] / "src" / "mailwarden"
SECRET_NAME = re.compile(r"secret|passw|dsn|token|csrf|cookie|hash_value|api_key", re.IGNORECASE)
#: names that contain those words but hold no secret value
ALLOWED = {"secret_file", "password_file", "token_name", "csrf_field", "secret_path"}
#: functions whose result is made to be shown: ``web passwd`` prints the hash to paste
SHOWN = {"hash_password"}
LOG_OBJECTS = {"log", "logger", "logging", "_log", "LOG", "warnings"}
LOG_METHODS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "log"}


def _names(node: ast.AST) -> set[str]:
    """Identifiers whose value flows into ``node`` (names and attribute ends)."""
    found: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            found.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            found.add(sub.attr)
    return found


def _is_output_call(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id == "print"
    if isinstance(func, ast.Attribute) and func.attr in LOG_METHODS:
        owner = func.value
        return isinstance(owner, ast.Name) and owner.id in LOG_OBJECTS
    return False


def _leaks(tree: ast.AST) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        args: list[ast.expr] = []
        if isinstance(node, ast.Call) and _is_output_call(node):
            args = [*node.args, *(k.value for k in node.keywords)]
        elif isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            args = list(node.exc.args)
        for arg in args:
            if (
                isinstance(arg, ast.Call)
                and isinstance(arg.func, ast.Name)
                and arg.func.id in SHOWN
            ):
                continue
            for name in sorted(_names(arg) - ALLOWED):
                if SECRET_NAME.search(name):
                    out.append((node.lineno, name))
    return out


def test_no_output_call_takes_a_secret() -> None:
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        for line, name in _leaks(ast.parse(path.read_text(), str(path))):
            problems.append(f"{path.relative_to(SRC)}:{line}: {name}")
    assert problems == []


def test_the_check_finds_a_leak() -> None:
    # the static check above must be able to fail
    code = "log.info('dsn is %s', settings.dsn)\nraise ValueError(f'bad {secret!r}')\nprint(token)"
    assert sorted(name for _line, name in _leaks(ast.parse(code))) == ["dsn", "secret", "token"]


def test_release_marks_log_nothing_of_the_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = load_secret(tmp_path / "release.key", create=True)
    raw = b"From: a@example.org\r\nSubject: x\r\n\r\nbody\r\n"
    with caplog.at_level(logging.DEBUG):
        marked = add_mark(raw, QuarantineId("5" * 32), secret, now=1_000_000.0)
        assert check_mark(marked, secret, now=1_000_001.0, max_age=60) is not None
        assert check_mark(marked, b"another" * 5, now=1_000_001.0, max_age=60) is None
    text = caplog.text + marked.decode()
    assert secret.hex() not in text and secret.hex().upper() not in text
    assert repr(secret) not in text


@pytest.mark.parametrize(
    ("body", "secret"),
    [
        ('[store]\ndsn = "postgresql://mw:Sup3rS3cret@db/mw"\n', "Sup3rS3cret"),
        ('[store]\ndsn = "host=db password=Sup3rS3cret"\n', "Sup3rS3cret"),
        ("[store]\ndsn = \"host=db password='Sup3r S3cret'\"\n", "Sup3r S3cret"),
        ('[web]\npassword_hash = "not-a-hash-Sup3rS3cret"\n', "Sup3rS3cret"),
    ],
)
def test_configuration_errors_do_not_repeat_a_secret(
    tmp_path: Path, body: str, secret: str
) -> None:
    path = tmp_path / "mailwarden.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert secret not in str(info.value)
