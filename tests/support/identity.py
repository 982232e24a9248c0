"""The identity the test suite's mailwarden processes keep.

Every long-running command started as root becomes ``[serve] user`` once its
listeners are bound, and refuses to start when that user does not exist (the
default, ``mailwarden``, is not created on a test machine).  The end-to-end
tests run as root on private folders only root can enter, so their
configurations name the user the tests run as: root keeps root, and any
other user is not dropped from at all.

Usage::

    from support.identity import keep_test_user
    config.write_text(...)
    keep_test_user(config)        # conf.d/00-test-user.toml beside it

A ``conf.d`` drop-in rather than a line in the file: it merges key by key
with a ``[serve]`` table the file may have (a second ``[serve]`` header in one
file is a TOML error).  Tests of the drop itself write their own
``[serve] user`` and do not call this.

SECURITY: test-only; writes one file beside the test's configuration.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

DROP_IN = "00-test-user.toml"


def current_user_name() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def keep_test_user(config: Path) -> Path:
    """Write the drop-in naming the current user beside ``config``; its path."""
    folder = Path(config).parent / "conf.d"
    folder.mkdir(exist_ok=True)
    path = folder / DROP_IN
    note = "# the tests run as this user on private folders\n"
    path.write_text(f'{note}[serve]\nuser = "{current_user_name()}"\n')
    return path
