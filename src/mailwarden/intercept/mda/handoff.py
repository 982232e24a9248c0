"""Hand the message to the original MDA by becoming it.

::

    path = find_program(argv[0])             # before scanning: fail early
    exec_mda(path, argv, (from_line, data), threshold=1 << 20)   # does not return
    fd = stage_copy((from_line, data), 1 << 20)   # the mda agent sends this to its client

The delivered copy is written to an anonymous file (memfd, or an unlinked
temporary file past the threshold), that file becomes standard input, and
the process image is replaced by the MDA with :func:`os.execv`.  The MDA's
exit status, its output and any signal that ends it therefore reach the MTA
exactly as without mailwarden, and no Python process waits around for it.

SECURITY: the command line comes from the MTA's configuration (trusted);
nothing from the message reaches it.  Files opened by this process are
close-on-exec (PEP 446), so the MDA inherits only standard input, output
and error.  The MDA runs with this process's identity: the MTA already
chose it (the recipient for Postfix's mailbox_command).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import NoReturn

# the thin client (stdlib only) looks the program up too, before it hands the message on
from mailwarden.cli import mda_client as client
from mailwarden.errors import MailwardenError


class HandoffError(MailwardenError):
    """The original MDA cannot be run."""


def find_program(name: str) -> str:
    """The executable ``name`` names: a path, or a name looked up in $PATH."""
    try:
        return client.find_program(name)
    except LookupError as exc:
        raise HandoffError(str(exc)) from exc


def exec_mda(path: str, argv: Sequence[str], parts: Sequence[bytes], *, threshold: int) -> NoReturn:
    """Run ``argv`` (from ``path``) with ``parts`` as its standard input, replacing this process.

    Raises :class:`HandoffError` when the message cannot be staged or the
    program cannot be started; on success it does not return.
    """
    try:
        client.become(path, argv, stage_copy(parts, threshold))
    except OSError as exc:
        raise HandoffError(f"cannot run the original MDA {path}: {exc.strerror or exc}") from exc


def stage_copy(parts: Sequence[bytes], threshold: int) -> int:
    """A descriptor of an anonymous file holding ``parts``, positioned at its start."""
    size = sum(len(p) for p in parts)
    if size <= threshold and hasattr(os, "memfd_create"):
        fd = os.memfd_create("mailwarden-mda", os.MFD_CLOEXEC)
    else:
        # unlinked at once: it disappears with the last descriptor (the MDA's stdin)
        fd, name = tempfile.mkstemp(prefix="mailwarden-mda-")
        os.unlink(name)
    try:
        for part in parts:
            view = memoryview(part)
            while view:
                view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd
