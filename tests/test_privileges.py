"""``mailwarden.privileges``: dropping root for real, in a forked child.

The drop itself needs root; those tests skip (or fail under CI) without it.
"""

from __future__ import annotations

import json
import os
import pwd
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mailwarden.privileges import (
    Identity,
    PrivilegeError,
    drop_privileges,
    must_drop,
    resolve_identity,
)
from support.tools import require

SRC = Path(__file__).resolve().parents[1] / "src" / "mailwarden"


def _in_child(action: Callable[[], Any]) -> Any:
    """Run ``action`` in a forked child and return what it returned (as JSON)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            result: Any = {"ok": action()}
        except BaseException as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"}
        os.write(write_end, json.dumps(result).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def _ids() -> dict[str, Any]:
    return {"res_uid": os.getresuid(), "res_gid": os.getresgid(), "groups": os.getgroups()}


def test_resolves_a_user_by_name_and_number() -> None:
    nobody = resolve_identity("nobody")
    assert nobody.uid == pwd.getpwnam("nobody").pw_uid
    assert nobody.gid == pwd.getpwnam("nobody").pw_gid
    assert nobody.gid in nobody.groups
    assert resolve_identity(str(nobody.uid)).user == "nobody"


def test_a_group_overrides_the_primary_group() -> None:
    identity = resolve_identity("nobody", "root")
    assert identity.gid == 0
    assert 0 in identity.groups


def test_unknown_user_and_group_are_errors() -> None:
    with pytest.raises(PrivilegeError, match="no such user"):
        resolve_identity("no-such-user-here")
    with pytest.raises(PrivilegeError, match="no such group"):
        resolve_identity("nobody", "no-such-group-here")


def test_dropping_to_the_current_user_changes_nothing() -> None:
    me = pwd.getpwuid(os.geteuid())
    current = Identity(me.pw_name, me.pw_uid, os.getegid(), tuple(os.getgroups()), me.pw_dir)
    before = _ids()
    if os.geteuid() == 0:
        assert not must_drop(resolve_identity("root"))
        assert drop_privileges(resolve_identity("root")) is False
    else:
        assert drop_privileges(current) is False
    assert _ids() == before


def test_drops_root_for_good_with_the_users_groups() -> None:
    require(os.geteuid() == 0, "dropping privileges needs root")
    target = resolve_identity("nobody")

    def drop() -> dict[str, Any]:
        dropped = drop_privileges(target)
        ids = _ids()
        try:
            os.setuid(0)
            regained = True
        except PermissionError:
            regained = False
        env = {k: os.environ.get(k) for k in ("HOME", "USER", "LOGNAME")}
        return {"dropped": dropped, "regained": regained, "env": env, **ids}

    result = _in_child(drop)
    assert "ok" in result, result
    got = result["ok"]
    assert got["dropped"] is True
    assert got["res_uid"] == [target.uid] * 3
    assert got["res_gid"] == [target.gid] * 3
    assert sorted(got["groups"]) == sorted(target.groups)
    assert got["regained"] is False
    assert got["env"] == {"HOME": target.home, "USER": "nobody", "LOGNAME": "nobody"}


def test_supplementary_groups_of_root_are_cleared() -> None:
    require(os.geteuid() == 0, "dropping privileges needs root")
    target = resolve_identity("nobody")

    def drop() -> list[int]:
        os.setgroups([0, 4])  # as if root had been started with extra groups
        drop_privileges(target)
        return os.getgroups()

    result = _in_child(drop)
    assert 0 not in result["ok"] and 4 not in result["ok"]


def test_not_root_is_a_no_op() -> None:
    require(os.geteuid() == 0, "needs root to become an ordinary user first")
    nobody = resolve_identity("nobody")

    def as_nobody() -> dict[str, Any]:
        drop_privileges(nobody)
        before = _ids()
        dropped = drop_privileges(resolve_identity("daemon"))
        return {"dropped": dropped, "same": _ids() == before}

    assert _in_child(as_nobody) == {"ok": {"dropped": False, "same": True}}


def test_no_other_module_changes_user_or_group() -> None:
    calls = re.compile(r"\b(?:set(?:e|re|res)?[ug]id|setgroups|initgroups)\s*\(")
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.name != "privileges.py" and calls.search(path.read_text())
    ]
    assert offenders == []


def test_the_parent_death_signal_survives_the_drop() -> None:
    require(os.geteuid() == 0, "dropping privileges needs root")
    from mailwarden.parentdeath import death_signal, die_with_parent

    target = resolve_identity("nobody")

    def drop() -> list[int]:
        die_with_parent(os.getppid())
        before = death_signal()
        # the kernel clears it on a change of identity (prctl(2)); the drop sets it again
        drop_privileges(target)
        return [before, death_signal()]

    assert _in_child(drop) == {"ok": [15, 15]}


def _config_naming(tmp_path: Path, user: str) -> Any:
    from mailwarden.config import load_config

    path = tmp_path / "mw.toml"
    # every folder inside tmp_path: resolving for a user to drop to creates the missing ones
    path.write_text(
        f'[serve]\nagents = []\nuser = "{user}"\n'
        f'[daemon]\nsocket = "{tmp_path}/run/d.sock"\npid_file = ""\n'
        f'[engine]\ncache_dir = ""\n'
        f'[store]\ndatabase = "{tmp_path}/st/db"\nspool_dir = "{tmp_path}/st/q"\n'
    )
    return load_config(path)


def test_service_identity_refuses_an_unknown_user_at_its_line(tmp_path: Path) -> None:
    from mailwarden.errors import ConfigError
    from mailwarden.privileges import service_identity

    config = _config_naming(tmp_path, "no-such-user-here")
    if os.geteuid() != 0:
        assert service_identity(config) is None  # not root: nothing to drop, nothing asked
        return
    with pytest.raises(ConfigError) as caught:
        service_identity(config)
    text = str(caught.value)
    assert f"{tmp_path / 'mw.toml'}:3" in text and "serve.user" in text
    assert 'user = "root"' in text  # the explicit way to keep root is named


def test_service_identity_root_keeps_root_and_nobody_is_dropped_to(tmp_path: Path) -> None:
    require(os.geteuid() == 0, "only root has anything to drop")
    from mailwarden.privileges import service_identity

    assert service_identity(_config_naming(tmp_path, "root")) is None
    target = service_identity(_config_naming(tmp_path, "nobody"))
    assert target is not None and target.user == "nobody"
    # the folders it will write to were made for that user
    assert (tmp_path / "run").stat().st_uid == target.uid
