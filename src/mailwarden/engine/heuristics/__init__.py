"""Heuristics: suspicious file types, deceptive names, macros and encrypted archives.

Usage: the walker calls ``check(obj, kind, settings)`` for every object and
reports each :class:`HeuristicHit` as a ``suspicious`` finding (engine
``heuristics``).  :class:`HeuristicSettings` switches each family of names;
:data:`HEURISTIC_NAMES` lists every name ``check`` can return.  The precedence
that keeps one object to a single hit is documented in ``_check``.

SECURITY: judges untrusted names and content; reads them only, needs no
privileges, and never raises on malformed input.
"""

from mailwarden.engine.heuristics._check import HEURISTIC_NAMES, check
from mailwarden.engine.heuristics._settings import HeuristicHit, HeuristicSettings

__all__ = ["HEURISTIC_NAMES", "HeuristicHit", "HeuristicSettings", "check"]
