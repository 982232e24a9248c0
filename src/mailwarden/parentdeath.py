"""Ending a process together with its parent: Linux's ``PR_SET_PDEATHSIG``.

Usage::

    die_with_parent(parent)          # in a child, right after fork (or first thing after exec)
    keep = death_signal()            # before a change of identity, which clears it
    restore_death_signal(keep)       # after

The kernel sends the chosen signal (SIGTERM: the child stops cleanly) when
the thread that forked the child exits, so supervisors call ``fork`` from
their main thread only.  Two traps from prctl(2): the setting is cleared
when the process changes its user or group id (``privileges.py`` saves and
restores it around the drop) and when it executes a set-user-id program.
Elsewhere than on Linux every function does nothing.

SECURITY: asks the kernel to signal this process; changes nothing else.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal

_PR_SET_PDEATHSIG = 1
_PR_GET_PDEATHSIG = 2


def _load_prctl() -> ctypes._NamedFuncPointer | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# resolved once at import: die_with_parent runs between fork and exec, where
# looking a library up is not safe
_PRCTL = _load_prctl()


def die_with_parent(parent: int, signum: int = signal.SIGTERM) -> None:
    """Receive ``signum`` when the parent dies; exit at once if it already has.

    ``parent`` is the parent's pid as the parent saw it before forking.
    """
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    # the parent may have died before the prctl took effect
    if os.getppid() != parent:
        os._exit(1)


def death_signal() -> int:
    """The signal this process gets when its parent dies; 0 for none."""
    if _PRCTL is None:
        return 0
    value = ctypes.c_int(0)
    if _PRCTL(_PR_GET_PDEATHSIG, ctypes.byref(value), 0, 0, 0) != 0:
        return 0
    return value.value


def restore_death_signal(signum: int) -> None:
    """Set the parent-death signal again (after a change of identity cleared it)."""
    if signum and _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
