"""Dropping root privileges: the one place in mailwarden that changes user or group.

Usage::

    from mailwarden.privileges import drop_privileges, resolve_identity
    target = resolve_identity("mailwarden")          # raises PrivilegeError if unknown
    ... create what needs root (folders under /run, privileged listeners) ...
    drop_privileges(target)                          # True when it changed anything

A process that is not root, or that already is the target user, is left as
it is (:func:`drop_privileges` returns False): a developer running mailwarden
from a checkout needs no extra configuration.

SECURITY: this is the only module that calls setuid, setgid or setgroups;
tests check that no other module does.  The order is fixed: supplementary
groups first (they can only be changed while root), then the group, then the
user, with the real, effective and saved ids all set so nothing can be
regained; afterwards the result is verified, including that root cannot be
taken back, and any mismatch is an error rather than a process that runs
with more rights than it reports.
"""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass

from mailwarden.errors import MailwardenError


class PrivilegeError(MailwardenError):
    """The configured user or group is unknown, or dropping to it failed."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Whom to become: names for messages, ids for the system calls."""

    user: str
    uid: int
    gid: int
    #: supplementary groups, the primary one included
    groups: tuple[int, ...]
    home: str


def resolve_identity(user: str, group: str = "") -> Identity:
    """Look ``user`` (and ``group``, else the user's primary group) up by name or number.

    Supplementary groups are those the group database lists the user in, so a
    site can grant access (say, to freshclam's folder) by group membership.
    """
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except (KeyError, OverflowError) as exc:
        raise PrivilegeError(f"no such user: {user!r}") from exc
    if group:
        try:
            gid = grp.getgrgid(int(group)).gr_gid if group.isdigit() else grp.getgrnam(group).gr_gid
        except (KeyError, OverflowError) as exc:
            raise PrivilegeError(f"no such group: {group!r}") from exc
    else:
        gid = entry.pw_gid
    groups = {gid}
    groups.update(g.gr_gid for g in grp.getgrall() if entry.pw_name in g.gr_mem)
    return Identity(entry.pw_name, entry.pw_uid, gid, tuple(sorted(groups)), entry.pw_dir)


def is_root() -> bool:
    return os.geteuid() == 0


def must_drop(target: Identity) -> bool:
    """Whether :func:`drop_privileges` would change this process."""
    return is_root() and target.uid != 0


def drop_privileges(target: Identity) -> bool:
    """Become ``target`` for good; True when privileges were dropped.

    Not root, or ``target`` is root itself: nothing happens and False is
    returned.  On success HOME, USER and LOGNAME name ``target`` too.
    Raises :class:`PrivilegeError` when a call fails or the result is not
    exactly ``target``.
    """
    if not must_drop(target):
        return False
    try:
        os.setgroups(list(target.groups))
        os.setresgid(target.gid, target.gid, target.gid)
        os.setresuid(target.uid, target.uid, target.uid)
    except OSError as exc:
        raise PrivilegeError(f"cannot become {target.user}: {exc}") from exc
    _verify(target)
    # programs that find their files through these (and the children that
    # inherit them) must not look in root's home
    os.environ.update(HOME=target.home, USER=target.user, LOGNAME=target.user)
    return True


def _verify(target: Identity) -> None:
    if os.getresuid() != (target.uid,) * 3 or os.getresgid() != (target.gid,) * 3:
        raise PrivilegeError(f"still not {target.user} after dropping privileges")
    if set(os.getgroups()) != set(target.groups):
        raise PrivilegeError(f"supplementary groups of {target.user} not in effect")
    try:
        os.setresuid(0, 0, 0)
    except PermissionError:
        return
    raise PrivilegeError(f"root could be regained after becoming {target.user}")
