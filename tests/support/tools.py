"""Decide what a test does when a real tool it needs is missing.

Developers may run the suite without every Debian package installed, so a
missing tool skips the test with the reason.  Under CI (``CI=true``) the
bootstrap script installs everything, so a missing tool there is a broken
install and fails the test instead of hiding it as a skip.

Usage::

    from support.tools import require
    require(shutil.which("clamd") is not None, "clamd is not installed")

SECURITY: reads one environment variable; runs nothing.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """True when running under CI, where every tool must be present."""
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def missing(reason: str) -> NoReturn:
    """Skip the current test for ``reason``, or fail it under CI."""
    if in_ci():
        pytest.fail(f"required under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def require(condition: bool, reason: str) -> None:
    """Call :func:`missing` with ``reason`` unless ``condition`` holds."""
    if not condition:
        missing(reason)
