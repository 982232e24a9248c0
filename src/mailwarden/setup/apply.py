"""Apply a plan, undo it, and report what is installed: the generic half of setup.

Usage (the CLI does this; tests call it directly)::

    from mailwarden.setup import INTEGRATIONS, apply, status, uninstall

    integration = INTEGRATIONS["postfix"]
    plan = integration.plan(ctx, "milter")
    manifest = apply(plan, ctx, ask=None, out=print)      # ask=None: --yes
    uninstall(ctx, "postfix", ask=None, out=print)        # back to the original bytes
    for manifest, files in status(ctx): ...

``ask(question) -> bool`` is asked before anything changes, and before an
uninstall would throw away an edit made after setup.  ``ask=None`` means
``--yes``: the plan is approved, but an administrator's later edit is never
discarded (the file is kept and the run says so).  ``out(line)`` receives
everything shown: the diffs, the commands as they will run, notes, results.

:func:`apply` in order: finish an interrupted earlier run (:func:`recover`);
drop edits whose text is already there (a second run is "nothing to do");
show every change; ask; back up every file the edits and the commands'
``touches`` name and write the manifest (``state = "applying"``); write the
edits; run the commands; run the checks (the MTA's checker, and loading
mailwarden's configuration); on any failure (or an interruption) restore
every file and raise :class:`SetupError` with the checker's output; else mark
the manifest complete, run the reloads (skipped with a note when the MTA is
not running) and enable mailwarden's service (skipped without systemd).

SECURITY: needs the rights to write the MTA's configuration (root for the
system's).  Commands run without a shell, with ``ctx.path`` first in PATH;
their output is shown, never parsed for decisions.  Nothing is overwritten
without a backup recorded in the manifest first.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import shlex
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from mailwarden.config import load_config
from mailwarden.errors import ConfigError
from mailwarden.setup import mailwarden_side
from mailwarden.setup.manifest import (
    FileRecord,
    Manifest,
    backup,
    copy_into,
    ensure_private_dir,
    load_manifest,
    locked,
    read_bytes,
    remove_manifest,
    restore,
    save_manifest,
    sha256_of,
    state_dir,
)
from mailwarden.setup.plan import Command, FileEdit, Plan, SetupContext, SetupError

Ask = Callable[[str], bool] | None
Out = Callable[[str], None]

#: how long one command (postconf, m4, a checker, a reload) may run
COMMAND_TIMEOUT = 120.0


class SetupCancelled(SetupError):
    """The administrator said no; nothing was changed."""


@dataclass(frozen=True, slots=True)
class FileState:
    """One recorded file as ``--status`` reports it."""

    path: str
    #: "as set up" | "edited since setup" | "missing" | "as before setup"
    state: str


# --- running commands ---------------------------------------------------------------


def run_command(command: Command, ctx: SetupContext) -> subprocess.CompletedProcess[str]:
    """Run one plan command without a shell; SetupError when it cannot start."""
    env = dict(os.environ)
    if ctx.path:
        env["PATH"] = f"{ctx.path}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    try:
        return subprocess.run(
            list(command.argv),
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    except FileNotFoundError as exc:
        raise SetupError(f"{command.argv[0]}: not found ({shlex.join(command.argv)})") from exc
    except subprocess.TimeoutExpired as exc:
        raise SetupError(
            f"{shlex.join(command.argv)}: no answer after {COMMAND_TIMEOUT:.0f} s"
        ) from exc
    except OSError as exc:
        raise SetupError(f"{shlex.join(command.argv)}: cannot run: {exc}") from exc


def _output(result: subprocess.CompletedProcess[str]) -> str:
    text = (result.stdout or "") + (result.stderr or "")
    return text.strip() or f"(no output; exit status {result.returncode})"


# --- showing a plan -----------------------------------------------------------------


def effective_edits(edits: Iterable[FileEdit]) -> tuple[FileEdit, ...]:
    """The edits that would change something (the others are already in place)."""
    result = []
    for edit in edits:
        data = read_bytes(edit.path)
        if edit.text is None:
            if data is not None:
                result.append(edit)
        elif data is None or data != edit.text.encode():
            result.append(edit)
    return tuple(result)


def unified_diff(path: Path, before: bytes | None, after: str | None) -> str:
    """``diff -u`` of a file's old and new text (``/dev/null`` for a missing side)."""
    old = [] if before is None else before.decode(errors="replace").splitlines(keepends=True)
    new = [] if after is None else after.splitlines(keepends=True)
    lines = difflib.unified_diff(
        old,
        new,
        fromfile=str(path) if before is not None else "/dev/null",
        tofile=str(path) if after is not None else "/dev/null",
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def show_plan(
    plan: Plan,
    edits: tuple[FileEdit, ...],
    *,
    running: bool,
    service: tuple[Command, ...],
    out: Out,
) -> None:
    out(f"mailwarden setup: {plan.mta}, mode {plan.mode}")
    for note in plan.notes:
        out(f"note: {note}")
    for edit in edits:
        out("")
        out(f"# {edit.why}" if edit.why else f"# {edit.path}")
        out(unified_diff(edit.path, read_bytes(edit.path), edit.text).rstrip("\n"))
    if plan.commands:
        out("")
        out("commands, in this order:")
        for command in plan.commands:
            out(f"  {shlex.join(command.argv)}" + (f"    # {command.why}" if command.why else ""))
    if plan.checks:
        out("")
        out("then the checker (a failure restores every file):")
        for command in plan.checks:
            out(f"  {shlex.join(command.argv)}")
    reloads = plan.reloads
    if reloads:
        out("")
        if running:
            out("then:")
            for command in reloads:
                out(f"  {shlex.join(command.argv)}")
        else:
            out(f"{plan.mta} is not running: the reload is skipped:")
            for command in reloads:
                out(f"  (skipped) {shlex.join(command.argv)}")
    if service:
        out("")
        out("mailwarden's service:")
        for command in service:
            out(f"  {shlex.join(command.argv)}")


# --- apply --------------------------------------------------------------------------


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{time.time_ns() % 1_000_000:06d}"


def _plan_record(plan: Plan) -> dict[str, object]:
    data = asdict(plan)
    # the text is in the backups and after-copies; the manifest keeps the shape
    data["edits"] = [
        {"path": str(e.path), "why": e.why, "removes": e.text is None} for e in plan.edits
    ]
    for key in ("commands", "checks", "reloads"):
        data[key] = [
            {
                "argv": list(c.argv),
                "why": c.why,
                "touches": [str(p) for p in c.touches],
                "needs_running_mta": c.needs_running_mta,
            }
            for c in getattr(plan, key)
        ]
    return data


def _missing_dirs(path: Path) -> list[Path]:
    missing = []
    p = path.parent
    while not p.exists():
        missing.append(p)
        p = p.parent
    return list(reversed(missing))


def _service_steps(
    ctx: SetupContext, changed: bool, units: bool = False
) -> tuple[tuple[Command, ...], bool | None]:
    """The systemctl commands that make mailwarden run what the plan enabled
    (``units``: a drop-in for its unit changed, which systemd reads on daemon-reload)."""
    if not mailwarden_side.systemd_running(ctx):
        return (), None
    probe = Command(("systemctl", "is-enabled", "--quiet", mailwarden_side.SERVICE))
    enabled = run_command(probe, ctx).returncode == 0
    active_probe = Command(("systemctl", "is-active", "--quiet", mailwarden_side.SERVICE))
    active = run_command(active_probe, ctx).returncode == 0
    steps: list[Command] = []
    if units:
        steps.append(_DAEMON_RELOAD)
    if not enabled:
        steps.append(Command(("systemctl", "enable", mailwarden_side.SERVICE), why="at boot"))
    if not active or changed:
        steps.append(
            Command(
                ("systemctl", "restart", mailwarden_side.SERVICE),
                why="start the daemon and the agents now",
            )
        )
    return tuple(steps), enabled


_DAEMON_RELOAD = Command(("systemctl", "daemon-reload"), why="read the unit's drop-in")


def _is_running(plan: Plan, ctx: SetupContext) -> bool:
    from mailwarden.setup import INTEGRATIONS

    try:
        found = INTEGRATIONS[plan.mta].detect(ctx)
    except (KeyError, SetupError):
        return False
    return bool(found and found.running)


def apply(
    plan: Plan,
    ctx: SetupContext,
    *,
    ask: Ask,
    out: Out,
    dry_run: bool = False,
    running: bool | None = None,
) -> Manifest | None:
    """Show ``plan``, ask, and carry it out; see the module docstring.

    Returns the completed manifest; None for ``dry_run`` or when there was
    nothing to do.  Raises :class:`SetupCancelled` when the answer is no and
    :class:`SetupError` when a step or a check failed (every file restored),
    or when another setup of the same MTA is running.
    """
    if dry_run:  # reads only: no lock, no state folder needed
        return _apply(plan, ctx, ask=ask, out=out, dry_run=True, running=running)
    with locked(ctx, plan.mta):
        return _apply(plan, ctx, ask=ask, out=out, dry_run=False, running=running)


def _apply(
    plan: Plan,
    ctx: SetupContext,
    *,
    ask: Ask,
    out: Out,
    dry_run: bool = False,
    running: bool | None = None,
) -> Manifest | None:
    if running is None:
        running = _is_running(plan, ctx)
    if not dry_run:
        recover(ctx, plan.mta, out=out)
    existing = load_manifest(ctx, plan.mta)
    if dry_run and existing is not None and existing.state == "applying":
        out(
            f"{plan.mta}: a setup run started {existing.started} did not finish; a run "
            f"without --dry-run first restores the {len(existing.files)} file(s) it recorded, "
            "then shows its plan"
        )
        out("dry run: nothing was changed")
        return None
    if existing is not None and existing.state == "complete" and existing.mode != plan.mode:
        raise SetupError(
            f"{plan.mta} is already set up in mode {existing.mode} "
            f"(since {existing.completed}); run `mailwarden setup --uninstall --mta "
            f"{plan.mta}` first"
        )
    side = mailwarden_side.mailwarden_edits(plan, ctx)
    edits = effective_edits((*plan.edits, *side))
    units = any(mailwarden_side.is_unit_file(e.path) for e in edits)
    service, enabled_before = _service_steps(ctx, changed=bool(side), units=units)
    if not edits and not plan.commands and not service:
        out(f"{plan.mta} ({plan.mode}): nothing to do, everything is already in place")
        return None
    show_plan(plan, edits, running=running, service=service, out=out)
    if dry_run:
        out("")
        out("dry run: nothing was changed")
        return None
    if ask is not None and not ask("Apply these changes?"):
        raise SetupCancelled("cancelled: nothing was changed")

    paths: list[Path] = []
    for path in [e.path for e in edits] + [p for c in plan.commands for p in c.touches]:
        if path not in paths:
            paths.append(path)
    for path in paths:
        read_bytes(path)  # unreadable: stop before anything is written
    store = state_dir(ctx) / plan.mta
    ensure_private_dir(store)
    backups = store / f"backup-{_stamp()}"
    records = [backup(backups, path, _missing_dirs(path)) for path in paths]
    manifest = Manifest(
        mta=plan.mta,
        mode=plan.mode,
        state="applying",
        started=_now(),
        files=records,
        plan=_plan_record(plan),
        service_enabled_before=enabled_before,
        previous=None if existing is None else asdict(existing),
    )
    save_manifest(ctx, manifest)

    try:
        _carry_out(plan, edits, ctx, out)
    except BaseException as exc:
        _roll_back(ctx, manifest, out)
        if isinstance(exc, SetupError):
            raise SetupError(f"{exc}\nevery file was restored as it was before") from exc
        raise

    _complete(manifest, store, existing)
    save_manifest(ctx, manifest)
    out("")
    out(f"applied; manifest: {state_dir(ctx) / plan.mta / 'manifest.json'}")
    _run_reloads(plan.reloads, ctx, running=running, mta=plan.mta, out=out)
    for command in service:
        result = run_command(command, ctx)
        if result.returncode != 0:
            out(f"warning: {shlex.join(command.argv)} failed: {_output(result)}")
    if not service and mailwarden_side.systemd_running(ctx) is False and (side or plan.agents):
        out(
            "note: systemd is not running here: start mailwarden yourself "
            "(`mailwarden serve`, see docs/serve.md)"
        )
    return manifest


def _carry_out(plan: Plan, edits: tuple[FileEdit, ...], ctx: SetupContext, out: Out) -> None:
    from mailwarden.setup.manifest import write_atomic

    for edit in edits:
        if edit.text is None:
            edit.path.unlink(missing_ok=True)
            continue
        edit.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            st = edit.path.stat()
            mode, uid, gid = st.st_mode & 0o7777, st.st_uid, st.st_gid
        except FileNotFoundError:
            mode, uid, gid = edit.mode, None, None
        try:
            write_atomic(edit.path, edit.text.encode(), mode=mode, uid=uid, gid=gid)
        except OSError as exc:
            raise SetupError(f"{edit.path}: cannot write: {exc.strerror or exc}") from exc
    for command in plan.commands:
        result = run_command(command, ctx)
        if result.returncode != 0:
            raise SetupError(f"{shlex.join(command.argv)} failed:\n{_output(result)}")
    for command in plan.checks:
        result = run_command(command, ctx)
        if result.returncode != 0:
            raise SetupError(f"the check failed: {shlex.join(command.argv)}\n{_output(result)}")
        out(f"check passed: {shlex.join(command.argv)}")
    if ctx.mailwarden_config.exists():
        try:
            load_config(ctx.mailwarden_config)
        except ConfigError as exc:
            raise SetupError(f"mailwarden's configuration no longer loads: {exc}") from exc


def _complete(manifest: Manifest, store: Path, existing: Manifest | None) -> None:
    after_store = store / "after"
    for rec in manifest.files:
        data = read_bytes(Path(rec.path))
        if data is None:
            rec.sha256_after = None
            rec.after_copy = None
        else:
            rec.sha256_after = hashlib.sha256(data).hexdigest()
            rec.after_copy = str(copy_into(after_store, Path(rec.path), data))
    if existing is not None:
        # the first run's backups stay the originals; this run adds files to them
        merged = list(existing.files)
        for rec in manifest.files:
            old = next((r for r in merged if r.path == rec.path), None)
            if old is None:
                merged.append(rec)
            else:
                old.sha256_after, old.after_copy = rec.sha256_after, rec.after_copy
        manifest.files = merged
        manifest.started = existing.started
        if existing.service_enabled_before is not None:
            manifest.service_enabled_before = existing.service_enabled_before
    manifest.previous = None
    manifest.state = "complete"
    manifest.completed = _now()


def _roll_back(ctx: SetupContext, manifest: Manifest, out: Out) -> None:
    """Put back every file of an unfinished run, then its earlier manifest (if any)."""
    problems = []
    for rec in manifest.files:
        try:
            restore(rec)
        except (SetupError, OSError) as exc:
            problems.append(f"{rec.path}: {exc}")
    if problems:
        # keep the manifest: it is the only record of what to restore by hand
        raise SetupError("could not restore every file:\n" + "\n".join(problems))
    if manifest.previous is not None:
        save_manifest(ctx, Manifest.from_dict(manifest.previous))
    else:
        remove_manifest(ctx, manifest.mta)
    out(f"restored {len(manifest.files)} file(s) as they were before this run")


def _run_reloads(
    reloads: tuple[Command, ...], ctx: SetupContext, *, running: bool, mta: str, out: Out
) -> None:
    for command in reloads:
        if command.needs_running_mta and not running:
            out(f"note: {mta} is not running; skipped: {shlex.join(command.argv)}")
            continue
        result = run_command(command, ctx)
        if result.returncode != 0:
            out(f"warning: {shlex.join(command.argv)} failed: {_output(result)}")
        else:
            out(f"ran: {shlex.join(command.argv)}")


# --- recover, uninstall, status -----------------------------------------------------


def recover(ctx: SetupContext, mta: str, *, out: Out) -> bool:
    """Roll back a run of ``mta`` that was interrupted; True when there was one.

    A manifest still ``applying`` means the run stopped between its backups
    and its end.  Each file that differs from its backup is first kept beside
    the backups (``interrupted-*``), then restored: nothing is lost either way.
    """
    manifest = load_manifest(ctx, mta)
    if manifest is None or manifest.state != "applying":
        return False
    out(
        f"{mta}: a setup run started {manifest.started} (mode {manifest.mode}) did not "
        "finish; restoring the files it had recorded"
    )
    keep = state_dir(ctx) / mta / f"interrupted-{_stamp()}"
    for rec in manifest.files:
        data = read_bytes(Path(rec.path))
        if data is not None and hashlib.sha256(data).hexdigest() != rec.sha256_before:
            copy_into(keep, Path(rec.path), data)
            out(f"  {rec.path}: restored (its interrupted state is kept in {keep})")
    _roll_back(ctx, manifest, out)
    return True


def _file_state(rec: FileRecord) -> str:
    current = sha256_of(Path(rec.path))
    if current is not None and current == rec.sha256_after:
        return "as set up"
    if current is None and rec.sha256_after is None:
        return "as set up"
    if current == rec.sha256_before:
        return "as before setup"
    if current is None:
        return "missing"
    return "edited since setup"


def uninstall(
    ctx: SetupContext,
    mta: str,
    *,
    ask: Ask,
    out: Out,
    running: bool | None = None,
    dry_run: bool = False,
) -> list[str]:
    """Restore every file the manifest of ``mta`` records; return the paths kept.

    What will happen to each file is listed first and ``ask`` is asked once
    (:class:`SetupCancelled` on no); ``dry_run`` stops after the list.  A file
    edited since setup is then shown as a diff (what setup left -> what is
    there now) and restored only if ``ask`` agrees again; with ``ask=None`` it
    is kept and reported.  The manifest goes when nothing was kept; otherwise
    it stays, listing only the kept files, so a later run can finish the job.
    """
    if dry_run:
        return _uninstall(ctx, mta, ask=ask, out=out, running=running, dry_run=True)
    with locked(ctx, mta):
        return _uninstall(ctx, mta, ask=ask, out=out, running=running, dry_run=False)


def _uninstall(
    ctx: SetupContext,
    mta: str,
    *,
    ask: Ask,
    out: Out,
    running: bool | None = None,
    dry_run: bool = False,
) -> list[str]:
    if dry_run:
        interrupted = load_manifest(ctx, mta)
        if interrupted is not None and interrupted.state == "applying":
            out(f"{mta}: a setup run did not finish; --uninstall restores its files")
            out("dry run: nothing was changed")
            return []
    elif recover(ctx, mta, out=out):
        return []
    manifest = load_manifest(ctx, mta)
    if manifest is None:
        raise SetupError(
            f"{mta}: not set up (no manifest in {state_dir(ctx) / mta}); nothing to undo"
        )
    states = [(rec, _file_state(rec)) for rec in manifest.files]
    out(f"{mta}: undo mode {manifest.mode} (set up {manifest.completed}):")
    for rec, state in states:
        if state == "as before setup":
            action = "already as before setup"
        elif state == "as set up":
            action = f"restore from {rec.backup}" if rec.existed else "remove (setup created it)"
        else:
            action = f"{state}: its changes are shown and kept unless you agree"
        out(f"  {rec.path}: {action}")
    if dry_run:
        out("dry run: nothing was changed")
        return []
    if ask is not None and not ask("Undo the setup?"):
        raise SetupCancelled("cancelled: nothing was changed")
    kept: list[FileRecord] = []
    restored = 0
    for rec, state in states:
        if state == "as before setup":
            continue
        if state in ("edited since setup", "missing"):
            after = read_bytes(Path(rec.after_copy)) if rec.after_copy else b""
            now = read_bytes(Path(rec.path))
            out(f"{rec.path} was changed after setup ({state}):")
            text = None if now is None else now.decode(errors="replace")
            out(unified_diff(Path(rec.path), after, text).rstrip("\n") or "(no text)")
            if ask is None:
                out(
                    f"kept {rec.path}: it was edited after setup and --yes never discards "
                    f"an edit; the original is {rec.backup or '(none: setup created it)'}"
                )
                kept.append(rec)
                continue
            if not ask(f"Discard these changes and restore {rec.path} as it was before setup?"):
                out(f"kept {rec.path}")
                kept.append(rec)
                continue
        restore(rec)
        restored += 1
        out(f"restored {rec.path}" if rec.existed else f"removed {rec.path} (setup created it)")
    if running is None:
        from mailwarden.setup import INTEGRATIONS

        try:
            found = INTEGRATIONS[mta].detect(ctx)
        except (KeyError, SetupError):
            found = None
        running = bool(found and found.running)
    reloads = tuple(
        Command(
            tuple(c["argv"]),
            why=c.get("why", ""),
            needs_running_mta=bool(c.get("needs_running_mta")),
        )
        for c in manifest.plan.get("reloads", [])
    )
    _run_reloads(reloads, ctx, running=running, mta=mta, out=out)
    units = any(mailwarden_side.is_unit_file(rec.path) for rec in manifest.files)
    if units and mailwarden_side.systemd_running(ctx):
        result = run_command(_DAEMON_RELOAD, ctx)
        if result.returncode != 0:
            out(f"warning: systemctl daemon-reload failed: {_output(result)}")
    if manifest.service_enabled_before is False and mailwarden_side.systemd_running(ctx):
        result = run_command(mailwarden_side.service_disable(), ctx)
        if result.returncode != 0:
            out(f"warning: systemctl disable --now mailwarden failed: {_output(result)}")
    leftover = mailwarden_side.leftover_agents(ctx, list(manifest.plan.get("agents", [])))
    if leftover:
        out(f"note: {leftover}")
    if kept:
        manifest.files = kept
        save_manifest(ctx, manifest)
        out(f"{len(kept)} file(s) kept; the manifest still lists them")
    else:
        remove_manifest(ctx, mta)
        out(f"{mta}: uninstalled ({restored} file(s) restored)")
    return [rec.path for rec in kept]


def status(ctx: SetupContext) -> list[tuple[Manifest, list[FileState]]]:
    """Every MTA with a manifest, and the state of each file it records."""
    root = state_dir(ctx)
    result: list[tuple[Manifest, list[FileState]]] = []
    if not root.is_dir():
        return result
    for entry in sorted(root.iterdir()):
        if not entry.is_dir():
            continue
        manifest = load_manifest(ctx, entry.name)
        if manifest is None:
            continue
        files = [FileState(rec.path, _file_state(rec)) for rec in manifest.files]
        result.append((manifest, files))
    return result
