"""Dropping root privileges: the one place in mailwarden that changes user or group.

Usage::

    from mailwarden.privileges import drop_privileges, resolve_identity
    target = resolve_identity("mailwarden")          # raises PrivilegeError if unknown
    ... create what needs root (folders under /run, privileged listeners) ...
    drop_privileges(target)                          # True when it changed anything

Every long-running command (the daemon, each agent, web, metrics, update's
watcher and mirror, serve) runs as the one configured identity, ``[serve]
user`` and ``group``, the way clamd honours its ``User``::

    target = service_identity(config)   # None unless root; ConfigError at serve.user
    ... bind the listeners, open what needs root ...
    drop_root(target, own=[socket_path])

A process that is not root, or that already is the target user, is left as
it is (:func:`drop_privileges` returns False): a developer running mailwarden
from a checkout needs no extra configuration.  Root with a user that does not
exist is refused rather than left running as root; ``user = "root"`` is the
explicit way to keep root (for development).

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
import logging
import os
import pwd
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailwarden.errors import MailwardenError
from mailwarden.parentdeath import death_signal, restore_death_signal

if TYPE_CHECKING:
    from mailwarden.config import Config

log = logging.getLogger("mailwarden")


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
    # a change of identity clears the parent-death signal (prctl(2)): a child
    # of serve must still end with serve afterwards
    parent, keep = os.getppid(), death_signal()
    try:
        os.setgroups(list(target.groups))
        os.setresgid(target.gid, target.gid, target.gid)
        os.setresuid(target.uid, target.uid, target.uid)
    except OSError as exc:
        raise PrivilegeError(f"cannot become {target.user}: {exc}") from exc
    _verify(target)
    restore_death_signal(keep)
    if keep and os.getppid() != parent:
        # the parent died while the signal was cleared
        os.kill(os.getpid(), keep)
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


def configured_identity(config: Config) -> Identity:
    """``[serve] user`` and ``group``, resolved; a ConfigError at the key that names
    an unknown one."""
    from mailwarden.serve.settings import config_error

    user, group = config["serve"]["user"], config["serve"]["group"]
    try:
        return resolve_identity(user, group)
    except PrivilegeError as exc:
        key = "group" if group and "group" in str(exc) else "user"
        raise config_error(
            config,
            "serve",
            key,
            f"{exc} (create it, or name another in [serve] {key}; "
            'user = "root" keeps root, for development only)',
        ) from exc


def service_identity(config: Config) -> Identity | None:
    """Whom this long-running command becomes once its listeners are open.

    None when there is nothing to drop: not root, or ``[serve] user`` is root.
    Call it before binding, so a bad name stops the command before it starts;
    the folders the command writes to that do not exist yet are created for
    that user (``serve.prepare``).
    """
    if not is_root():
        return None
    from mailwarden.serve.prepare import prepare_folders

    target = configured_identity(config)
    if not must_drop(target):
        return None
    # the folders it will write to (sockets, pid file, cache, store), made now
    # for the user it becomes, as serve does for its children
    for line in prepare_folders(config, target):
        log.info("%s", line)
    return target


def drop_root(target: Identity | None, *, own: Iterable[str] = ()) -> bool:
    """Become ``target`` (from :func:`service_identity`); True when root was dropped.

    ``own``: files created as root that the process must remove or replace
    later (its unix sockets, its pid file) are given to ``target`` first;
    their group and mode stay as they are.
    """
    if target is None:
        return False
    for path in own:
        if path and os.path.lexists(path):
            os.chown(path, target.uid, -1, follow_symlinks=False)
    dropped = drop_privileges(target)
    if dropped:
        log.info("running as %s (uid %d, gid %d)", target.user, target.uid, target.gid)
    return dropped
