"""How many inputs each fuzz test runs, and the settings they share.

Every property test in ``tests/fuzz`` states its own ``max_examples``: a count
the whole folder can afford in CI on two cores.  A longer campaign sets
``MAILWARDEN_FUZZ_EXAMPLES`` to run every test with that many inputs instead::

    MAILWARDEN_FUZZ_EXAMPLES=20000 .venv/bin/pytest -q tests/fuzz

pytest's ``--hypothesis-seed=N`` makes a run reproducible.

SECURITY: test-only; reads one environment variable.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings

EXAMPLES_VAR = "MAILWARDEN_FUZZ_EXAMPLES"

#: health checks that only say "this input is big or slow to build"; fuzzing wants both
_QUIET = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.function_scoped_fixture,
    HealthCheck.large_base_example,
]


def examples(default: int) -> int:
    """``default``, unless the environment asks for a longer run."""
    raw = os.environ.get(EXAMPLES_VAR, "").strip()
    return int(raw) if raw else default


def fuzz(default: int, **overrides: Any) -> settings:
    """Settings for one fuzz test: ``default`` inputs in CI, no per-input deadline."""
    values: dict[str, Any] = {
        "max_examples": examples(default),
        "deadline": None,
        "suppress_health_check": _QUIET,
    }
    values.update(overrides)
    return settings(**values)
