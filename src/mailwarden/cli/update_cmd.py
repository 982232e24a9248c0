"""``mailwarden update``: install signature sets from a mirror, serve one, or follow freshclam.

SECURITY: writes below the folder that holds ``[update] database_dir`` and
the engine's cache; run it as the daemon's user (or root).  Talks to the
daemon's socket to make it reload.  ``--serve-mirror`` listens on loopback
unless given another address.  The long-running forms started as root become
``[serve] user`` (``privileges.drop_root``): ``--serve-mirror`` once its
listener is bound, ``--watch`` at once.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import signal
import sys
import textwrap
from pathlib import Path
from typing import NoReturn

from mailwarden.cli.common import add_config_option, config_from_args, fail
from mailwarden.config import Config
from mailwarden.errors import ConfigError, MailwardenError
from mailwarden.privileges import Identity, drop_root, service_identity
from mailwarden.update import (
    MANIFEST_NAME,
    SetStore,
    UpdateResult,
    UpdateSettings,
    Watcher,
    make_manifest,
    make_server,
    update_from,
)
from mailwarden.update.manifest import render
from mailwarden.update.updater import reload_for

DESCRIPTION = textwrap.dedent(
    """\
    Install, publish and follow signature sets.

    With no mode option, fetch the set from SOURCE (--from, else [update]
    source): a mirror folder or an http(s):// URL holding MANIFEST and the
    files it lists. Every file is checked against the SHA-256 of the
    manifest (and the manifest against its HMAC when [update] key_file is
    set), the set is test-loaded by the engine, then [update] database_dir
    is switched to it in one rename and the daemon reloads (RELOAD on its
    socket, else SIGHUP through its pid file) and is watched until STATS
    shows the new database. Anything wrong: the set is refused, the set in
    use stays, the exit status is 1.

    modes:
      --serve-mirror [HOST:PORT]  serve the set in use over HTTP to other
                                  nodes (default [update] mirror_listen,
                                  127.0.0.1:8026)
      --watch [DIR]               follow freshclam's folder (default [update]
                                  watch_dir, /var/lib/clamav): each change,
                                  once it has settled, is installed as above
      --rollback                  switch back to the previous set and reload
      --status                    show the set in use and the ones kept
      --make-manifest DIR         write DIR/MANIFEST for the signature files
                                  in DIR (signed with [update] key_file), to
                                  publish DIR as a mirror folder

    exit status: 0 installed or already up to date, 1 the set was refused or
    the daemon did not load it (the set in use is kept), 2 bad configuration
    or usage. docs/update.md explains the layout and the manifest format.
    """
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "update",
        help="install signature sets from a mirror, serve a mirror, follow freshclam",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_option(parser)
    parser.add_argument("--from", dest="source", metavar="SOURCE", help="mirror folder or URL")
    parser.add_argument(
        "--force", action="store_true", help="install a set older than the one in use"
    )
    parser.add_argument(
        "--no-reload", action="store_true", help="switch the set but do not signal the daemon"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--serve-mirror", nargs="?", const="", metavar="HOST:PORT", help="serve the set in use"
    )
    mode.add_argument("--watch", nargs="?", const="", metavar="DIR", help="follow a folder")
    mode.add_argument("--rollback", action="store_true", help="go back to the previous set")
    mode.add_argument("--status", action="store_true", help="show the installed sets")
    mode.add_argument("--make-manifest", metavar="DIR", help="write DIR/MANIFEST")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO if args.verbose or args.watch is not None else logging.WARNING,
        format="mailwarden update: %(message)s",
        stream=sys.stderr,
    )
    config = config_from_args(args)
    settings = UpdateSettings.from_config(config)
    if args.no_reload:
        settings = dataclasses.replace(settings, reload=False)
    try:
        if args.make_manifest:
            return _make_manifest(Path(args.make_manifest), settings)
        if args.status:
            return _status(settings)
        if args.rollback:
            return _rollback(settings)
        if args.serve_mirror is not None:
            target = service_identity(config)
            return _serve(settings, args.serve_mirror or settings.mirror_listen, target)
        if args.watch is not None:
            # nothing to bind: the long-running watcher gives up root at once
            drop_root(service_identity(config))
            return _watch(config, settings, Path(args.watch or settings.watch_dir))
        source = args.source or settings.source
        if not source:
            return fail("no source: name one with --from or [update] source")
        result = update_from(config, settings, source, force=args.force)
    except ConfigError:
        raise
    except MailwardenError as exc:
        print(f"mailwarden update: refused: {exc}; the set in use is kept", file=sys.stderr)
        return 1
    except OSError as exc:  # permissions, a full disk: nothing was switched
        print(f"mailwarden update: {exc}; the set in use is kept", file=sys.stderr)
        return 1
    _report(result)
    return 0


def _report(result: UpdateResult) -> None:
    if result.state == "up to date":
        print(f"up to date: {result.name} ({result.files} files)")
        return
    print(f"installed: {result.name} ({result.files} files, database {result.version})")
    if result.reload is not None:
        print(f"daemon: {result.reload.state}: {result.reload.detail}")


def _make_manifest(folder: Path, settings: UpdateSettings) -> int:
    manifest = make_manifest(folder)
    target = folder / MANIFEST_NAME
    tmp = folder / f".{MANIFEST_NAME}.tmp"
    tmp.write_bytes(render(manifest, settings.load_key()))
    tmp.replace(target)
    print(f"{target}: {len(manifest.files)} files")
    return 0


def _status(settings: UpdateSettings) -> int:
    sets = SetStore(settings.database_dir, keep=settings.keep)
    current = sets.current()
    print(f"database_dir: {settings.database_dir}")
    for name in sets.names():
        print(f"{'*' if name == current else ' '} {name}")
    if current is None:
        print("no set installed")
    return 0


def _rollback(settings: UpdateSettings) -> int:
    sets = SetStore(settings.database_dir, keep=settings.keep)
    with sets.lock():
        name = sets.rollback()
        print(f"switched to {name}")
        if settings.reload:
            outcome = reload_for(settings, None)
            print(f"daemon: {outcome.state}: {outcome.detail}")
            return 0 if outcome.ok else 1
    return 0


def _serve(settings: UpdateSettings, listen: str, target: Identity | None) -> int:
    server = make_server(SetStore(settings.database_dir, keep=settings.keep), listen)
    drop_root(target)
    host, port = str(server.server_address[0]), int(server.server_address[1])
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {settings.database_dir} on http://{shown}:{port}/", flush=True)
    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
    return 0


def _stop(_signum: int, _frame: object) -> NoReturn:
    # serve_forever and the watch loop run in the main thread: leave them by unwinding
    raise SystemExit(0)


def _watch(config: Config, settings: UpdateSettings, folder: Path) -> int:
    print(f"watching {folder} every {settings.watch_interval:g}s", flush=True)
    signal.signal(signal.SIGTERM, _stop)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        Watcher(config, settings, folder).run()
    return 0
