"""``mailwarden setup``: wire mailwarden into the installed MTA, show its state, undo it.

The command is a thin shell over ``mailwarden.setup``: it picks the MTA and
mode (asking when they are not given), builds the integration's plan, and
hands it to ``setup.apply`` / ``setup.uninstall`` / ``setup.status`` with a
question function that reads the terminal (or none with ``--yes``).

SECURITY: changing the system MTA's configuration needs root; the command
itself never raises its privileges.  Nothing is changed before the plan has
been shown and approved (or ``--yes``); ``--dry-run`` changes nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import textwrap
from pathlib import Path

from mailwarden.config import DEFAULT_PATH, ENV_VAR
from mailwarden.setup import (
    INTEGRATIONS,
    MTAS,
    FileState,
    Integration,
    Manifest,
    SetupCancelled,
    SetupContext,
    SetupError,
    apply,
    available,
    status,
    uninstall,
)

DESCRIPTION = textwrap.dedent(
    """\
    Install mailwarden into the mail server, show what is installed, or undo it.

    Without --mta, setup lists the MTAs it finds (with their versions and the
    modes each supports) and asks which one and how. With --mta and --mode it
    asks nothing but the final question (--yes answers it).

    Before anything changes, setup prints every file change as a unified diff
    and every command exactly as it will run (postconf -e/-M/-P, m4,
    update-exim4.conf...), then the MTA's own checker and the reload. It then
    backs up every file it will touch and records them in a manifest (sha256
    before and after), applies the plan, and runs the checker (postfix check,
    exim -bV, sendmail -bt). If the checker or any step fails, every file is
    restored and the error shown. A run that was interrupted is rolled back
    by the next one. When the MTA is not running, the reload is skipped with
    a note.

    The mailwarden side is configured too: the agent the mode needs is added
    to [serve] agents in the MTA's own drop-in, conf.d/NN-setup-MTA.toml beside
    the configuration file (mda modes: the mda agent, and the [mda] settings
    that let the MTA's deliveries reach its socket), and `systemctl
    enable`/`restart mailwarden` runs where systemd is running.

    Running setup again changes nothing ("nothing to do"). --uninstall lists
    what it will restore, asks, and puts every file back from the manifest; a
    file edited after setup is shown as a diff and kept unless you agree to
    discard the edit (--yes keeps it).

    modes:
      postfix   content-filter  after queue: content_filter, re-injection smtpd
                proxy           before queue: smtpd_proxy_filter on the smtp service
                milter          smtpd_milters, non_smtpd_milters, tempfail when down
                mda             mailbox_command runs mailwarden mda first
      sendmail  milter, mda
      exim      content-filter, malware-acl, mda
      qmail     qmail-queue (QMAILQUEUE wrapper), mda (qmail-start's default delivery)
      zmailer   content-filter (smtpserver.conf PARAM contentfilter)
    """
)

EPILOG = textwrap.dedent(
    """\
    files:
      /var/lib/mailwarden/setup/MTA/manifest.json   the manifest (--state-dir moves it;
                                                    with --mta-config-dir DIR it is kept
                                                    in DIR.mailwarden-setup/)
      .../MTA/backup-TIME/PATH                       the copy of each file before setup
      CONFIG_DIR/conf.d/50-setup-MTA.toml            mailwarden's side (51-... for a
                                                    second MTA, after the first's)

    examples:
      mailwarden setup                                       ask
      mailwarden setup --mta postfix --mode milter --dry-run show, change nothing
      mailwarden setup --mta postfix --mode content-filter --yes
      mailwarden setup --status
      mailwarden setup --uninstall --mta postfix
      mailwarden setup --mta postfix --mode proxy --mta-config-dir /etc/postfix-out

    exit status: 0 done (or nothing to do), 1 cancelled or a file was kept on
    uninstall, 2 an error (nothing changed, or everything restored).
    docs/setup.md has the details of each mode.
    """
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "setup",
        help="install mailwarden into the MTA (shows every change, backs up, undoes)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--status", action="store_true", help="show what setup installed and whether it changed"
    )
    action.add_argument("--uninstall", action="store_true", help="restore every file setup changed")
    parser.add_argument("--mta", choices=MTAS, help="the MTA to set up (default: ask)")
    parser.add_argument(
        "--mode",
        choices=(
            "content-filter",
            "proxy",
            "milter",
            "mda",
            "malware-acl",
            "qmail-queue",
        ),
        help="where mailwarden sits in the MTA (default: ask; see the list above)",
    )
    parser.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help="apply (or uninstall) without asking; never discards a later edit",
    )
    parser.add_argument(
        "-n",
        "--dry-run",
        action="store_true",
        help="show the plan (or what --uninstall would restore) and stop; nothing changes",
    )
    parser.add_argument(
        "--mta-config-dir",
        metavar="DIR",
        type=Path,
        help="the MTA's configuration folder, when not the system's (like postconf -c DIR)",
    )
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        type=Path,
        help="where the manifest and backups go (default: /var/lib/mailwarden/setup, or "
        "DIR.mailwarden-setup beside --mta-config-dir)",
    )
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help=f"mailwarden's configuration file setup reads and extends with conf.d/ "
        f"(default: ${ENV_VAR}, else {DEFAULT_PATH})",
    )
    parser.add_argument(
        "--mailwarden-command",
        metavar="PATH",
        help="the mailwarden program the MTA runs (mda, qmail-queue, zmailer-filter); "
        "default: mailwarden in PATH, else /usr/bin/mailwarden",
    )
    parser.add_argument(
        "--smtp-service",
        metavar="NAME",
        help="the MTA's public SMTP listener when not its default (Postfix: the master.cf "
        "service, default smtp)",
    )
    parser.add_argument(
        "--search-path",
        metavar="DIRS",
        help="colon-separated folders searched first for the MTA's programs",
    )
    parser.add_argument(
        "--no-service",
        action="store_true",
        help="do not run systemctl for mailwarden's unit (it is skipped anyway without systemd)",
    )
    parser.set_defaults(func=run)


def _context(args: argparse.Namespace) -> SetupContext:
    config = Path(args.config or os.environ.get(ENV_VAR) or DEFAULT_PATH)
    command = args.mailwarden_command or shutil.which("mailwarden") or "/usr/bin/mailwarden"
    return SetupContext(
        mta_config_dir=args.mta_config_dir,
        mailwarden=command,
        mailwarden_config=config.absolute(),
        path=args.search_path,
        state_dir=args.state_dir,
        smtp_service=args.smtp_service,
        systemd=False if args.no_service else None,
    )


def _print(line: str) -> None:
    print(line, flush=True)


def _ask_terminal(question: str) -> bool:
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        print()
        return False
    return answer.strip().lower() in ("y", "yes")


def _interactive() -> bool:
    return sys.stdin.isatty()


def _choose(prompt: str, options: list[str]) -> int:
    for number, text in enumerate(options, 1):
        print(f"  {number}) {text}")
    while True:
        try:
            answer = input(f"{prompt} [1-{len(options)}, empty: cancel] ").strip()
        except EOFError:
            answer = ""
        if not answer:
            return -1
        if answer.isdigit() and 1 <= int(answer) <= len(options):
            return int(answer) - 1
        print(f"answer a number from 1 to {len(options)}")


def run(args: argparse.Namespace) -> int:
    ctx = _context(args)
    ask = None if args.yes else (_ask_terminal if _interactive() else None)
    if not args.yes and not _interactive() and not args.status and not args.dry_run:
        raise SetupError("no terminal to ask on: add --yes to apply, or --dry-run to look")

    if args.status:
        return _status(status(ctx))

    if args.uninstall:
        mta = args.mta
        if mta is None:
            installed = [m.mta for m, _ in status(ctx)]
            if len(installed) != 1:
                raise SetupError(
                    "--uninstall: name the MTA with --mta (set up: "
                    + (", ".join(installed) or "none")
                    + ")"
                )
            mta = installed[0]
        try:
            kept = uninstall(ctx, mta, ask=ask, out=_print, dry_run=args.dry_run)
        except SetupCancelled as exc:
            print(exc)
            return 1
        return 1 if kept else 0

    mta, mode = args.mta, args.mode
    if mta is None or mode is None:
        if not _interactive():
            raise SetupError("without a terminal, give --mta and --mode")
        if mta is not None and INTEGRATIONS[mta].detect(ctx) is None:
            raise SetupError(f"{mta}: not installed on this host; nothing was changed")
        picked = _pick(ctx, mta, mode, available())
        if picked is None:
            print("cancelled: nothing was changed")
            return 1
        mta, mode = picked
    integration = INTEGRATIONS[mta]
    if mode not in integration.modes:
        raise SetupError(f"{mta} has no mode {mode} (modes: {', '.join(integration.modes)})")
    found = integration.detect(ctx)
    if found is None:
        raise SetupError(f"{mta}: not installed on this host; nothing was changed")
    plan = integration.plan(ctx, mode)
    try:
        apply(plan, ctx, ask=ask, out=_print, dry_run=args.dry_run, running=found.running)
    except SetupCancelled as exc:
        print(exc)
        return 1
    return 0


def _pick(
    ctx: SetupContext,
    mta: str | None,
    mode: str | None,
    integrations: dict[str, Integration | str],
) -> tuple[str, str] | None:
    rows: list[tuple[str, Integration]] = []
    print("MTAs on this host:")
    for name, item in integrations.items():
        if mta is not None and name != mta:
            continue
        if isinstance(item, str):
            print(f"     {name}: {item}")
            continue
        found = item.detect(ctx)
        if found is None:
            print(f"     {name}: not installed")
            continue
        state = "running" if found.running else "not running"
        rows.append((name, item))
        print(
            f"  {len(rows)}) {name} {found.version} ({found.config_dir}, {state}); "
            f"modes: {', '.join(found.modes)}"
        )
    if not rows:
        print("no MTA setup can configure was found")
        return None
    if len(rows) == 1:
        chosen = rows[0]
    else:
        index = _choose("Which MTA?", [name for name, _ in rows])
        if index < 0:
            return None
        chosen = rows[index]
    name, integration = chosen
    if mode is None:
        index = _choose(f"How should mailwarden sit in {name}?", list(integration.modes))
        if index < 0:
            return None
        mode = integration.modes[index]
    return name, mode


def _status(entries: list[tuple[Manifest, list[FileState]]]) -> int:
    if not entries:
        print("setup has installed nothing here (no manifest)")
        return 0
    for manifest, files in entries:
        state = (
            "complete"
            if manifest.state == "complete"
            else "INTERRUPTED (the next run rolls it back)"
        )
        since = manifest.completed or manifest.started
        print(f"{manifest.mta}: mode {manifest.mode}, {state}, since {since}")
        for f in files:
            print(f"  {f.path}: {f.state}")
    return 0
