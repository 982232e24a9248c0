"""``mailwarden quarantine``: list, show, release, delete and purge quarantined mail.

Reads and changes the store named by ``[store]``; ``release`` sends through the
SMTP server or the sendmail program named by ``[release]`` with a signed
release mark.

SECURITY: needs read and write access to the store database and spool (run as
the mailwarden user or root) and, for ``release``, read access to the release
secret.  Ids given on the command line are checked to be ids before anything is
looked up; message text is printed through ``display_name`` so a subject cannot
drive the terminal.  ``show --raw`` writes the message bytes unchanged: pipe it
to a file, not to a terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import re
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from mailwarden.actions import ReleaseError, load_secret, release, release_options
from mailwarden.cli.common import add_config_option, config_from_args, fail
from mailwarden.config import Config
from mailwarden.message import Point
from mailwarden.store import (
    QuarantineEntry,
    QuarantineFilter,
    QuarantineId,
    QuarantineStore,
    StoreUnavailableError,
    open_store,
    parse_id,
)
from mailwarden.store.retention import purge_expired
from mailwarden.verdict import display_name

DESCRIPTION = textwrap.dedent(
    """\
    Inspect and manage the quarantine.

      list      quarantined messages, newest first; filters combine
      show ID   one message's envelope, verdict and headers (--raw: the message)
      release ID
                re-inject the message with its original envelope, or to the
                --to recipients: by SMTP to [release] host:port (by default
                127.0.0.1:25), or with [release] method = "sendmail" through
                the MTA's sendmail program; it carries a release mark signed
                with the [release] secret_file, so the scanner accepts it
                instead of quarantining it again
      delete ID...
                remove messages from the quarantine
      purge     remove messages older than [store] retention_days and history
                older than [store] event_retention_days (`mailwarden serve`
                does this by itself every [store] purge_interval seconds)

    Ids are the 32 hex digits that list prints. Times (--since, --until) are
    UTC: 2024-05-01, 2024-05-01T13:00, or an age such as 90m, 12h, 7d.
    --sender and --recipient take an address or a domain (example.org);
    --finding matches part of a finding name; --point is S1 (in the MTA),
    S2 (delivery), S3 (outbound), S4 (download) or cli.

    exit status: 0 done; 1 the SMTP server or sendmail refused the message
    or could not be reached; 2 an unknown or malformed id, a message already
    released (without --force), or a configuration or store error;
    75 the store's database server could not be reached (PostgreSQL down):
    nothing was changed, try again later.
    """
)

EPILOG = textwrap.dedent(
    """\
    examples:
      mailwarden quarantine list --recipient example.org --since 2d
      mailwarden quarantine show 3f2a... --raw > message.eml
      mailwarden quarantine release 3f2a... --to admin@example.org
    """
)

#: sysexits.h EX_TEMPFAIL: the store's server did not answer; try again later
TEMPFAIL = 75

_AGE = re.compile(r"^(\d+)([smhdw])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "quarantine",
        help="list, show, release or delete quarantined mail",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="quarantine_action", metavar="ACTION", required=True)

    lst = _action(actions, "list", "list quarantined messages")
    lst.add_argument("--since", type=when, metavar="WHEN", help="quarantined at or after WHEN")
    lst.add_argument("--until", type=when, metavar="WHEN", help="quarantined at or before WHEN")
    lst.add_argument("--sender", metavar="ADDR", help="envelope sender: address or domain")
    lst.add_argument("--recipient", metavar="ADDR", help="a recipient: address or domain")
    lst.add_argument("--finding", metavar="TEXT", help="part of a finding name (eicar)")
    lst.add_argument(
        "--point", type=point, metavar="POINT", help="interception point: S1, S2, S3, S4, cli"
    )
    state = lst.add_mutually_exclusive_group()
    state.add_argument("--released", action="store_true", help="only released messages")
    state.add_argument("--not-released", action="store_true", help="only unreleased ones")
    lst.add_argument("--limit", type=int, default=100, metavar="N", help="at most N (100)")

    show = _action(actions, "show", "show one quarantined message")
    show.add_argument("id", metavar="ID")
    show.add_argument("--raw", action="store_true", help="write the message bytes to stdout")

    rel = _action(actions, "release", "re-inject a quarantined message")
    rel.add_argument("id", metavar="ID")
    rel.add_argument(
        "--to",
        action="append",
        default=[],
        metavar="ADDR",
        help="deliver to ADDR instead of the original recipients; repeatable",
    )
    rel.add_argument("--force", action="store_true", help="release again if already released")

    delete = _action(actions, "delete", "delete quarantined messages")
    delete.add_argument("ids", metavar="ID", nargs="+")

    _action(actions, "purge", "delete what is older than the retention periods")
    parser.set_defaults(func=run)


def _action(
    actions: argparse._SubParsersAction[argparse.ArgumentParser], name: str, text: str
) -> argparse.ArgumentParser:
    parser = actions.add_parser(
        name,
        help=text,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_option(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


def point(text: str) -> str:
    """``S2``, ``s2`` or ``mda`` -> ``S2``; anything else is a usage error."""
    value = text.strip()
    for item in Point:
        if value.lower() in (item.value.lower(), item.name.lower()):
            return item.value
    names = ", ".join(f"{p.value} ({p.name.lower()})" for p in Point)
    raise argparse.ArgumentTypeError(f"not an interception point: {text!r} (use {names})")


def when(text: str) -> float:
    """``2024-05-01``, ``2024-05-01T13:00`` (UTC) or an age (``12h``) -> Unix time."""
    age = _AGE.match(text.strip())
    if age:
        return time.time() - int(age.group(1)) * _SECONDS[age.group(2)]
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (use 2024-05-01, 2024-05-01T13:00 or 7d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    # ids are checked before the store is opened, so a typo never creates files
    ids = [parse_id(i) for i in (getattr(args, "ids", None) or [getattr(args, "id", None)]) if i]
    store = open_store(config)
    try:
        return _act(store, ids, args, config)
    except StoreUnavailableError as exc:
        return fail(f"the quarantine store is unavailable, try again later: {exc}", TEMPFAIL)
    finally:
        store.close()


def _act(
    store: QuarantineStore, ids: list[QuarantineId], args: argparse.Namespace, config: Config
) -> int:
    if args.quarantine_action == "list":
        return _list(store, args)
    if args.quarantine_action == "show":
        return _show(store, ids[0], args)
    if args.quarantine_action == "release":
        return _release(store, ids[0], args, config)
    if args.quarantine_action == "delete":
        for qid in ids:
            store.get(qid)
        for qid in ids:
            store.delete(qid)
        _say(args, {"deleted": ids}, "\n".join(f"deleted {q}" for q in ids))
        return 0
    return _purge(store, args, config)


def _list(store: QuarantineStore, args: argparse.Namespace) -> int:
    released = True if args.released else False if args.not_released else None
    where = QuarantineFilter(
        since=args.since,
        until=args.until,
        sender=args.sender,
        recipient=args.recipient,
        finding=args.finding,
        point=args.point,
        released=released,
        limit=args.limit,
    )
    entries = store.entries(where)
    if args.json:
        print(json.dumps([e.to_dict() for e in entries], indent=2))
        return 0
    if not entries:
        print("no quarantined messages match", file=sys.stderr)
        return 0
    print(
        f"{'ID':<32}  {'QUARANTINED (UTC)':<19}  {'STATUS':<10}  {'FINDING':<28}  SENDER -> RCPTS"
    )
    for e in entries:
        rcpts = ", ".join(e.envelope.recipients[:3]) + (
            " ..." if len(e.envelope.recipients) > 3 else ""
        )
        mark = " [released]" if e.released else ""
        print(
            f"{e.id}  {_utc(e.created)}  {e.verdict.status.value:<10}  "
            f"{display_name(e.verdict.name or e.verdict.reason or '-', 28):<28}  "
            f"{display_name(e.envelope.sender or '<>', 60)} -> {display_name(rcpts, 120)}{mark}"
        )
        if e.subject:
            print(f"{'':<34}subject: {display_name(e.subject, 100)}")
    return 0


def _show(store: QuarantineStore, qid: str, args: argparse.Namespace) -> int:
    entry = store.get(parse_id(qid))
    if args.raw:
        sys.stdout.buffer.write(store.read(entry.id))
        sys.stdout.buffer.flush()
        return 0
    if args.json:
        print(json.dumps(entry.to_dict(), indent=2))
        return 0
    for label, value in _describe(entry):
        print(f"{label + ':':<14}{display_name(value, 300)}")
    raw = store.read(entry.id)
    end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0), default=len(raw))
    print("headers:")
    for line in raw[:end].decode("utf-8", "replace").splitlines()[:200]:
        print("  " + display_name(line, 300))
    return 0


def _describe(e: QuarantineEntry) -> list[tuple[str, str]]:
    env = e.envelope
    rows = [
        ("id", e.id),
        ("quarantined", _utc(e.created) + " UTC"),
        ("reason", e.reason),
        ("status", e.verdict.status.value + (f" ({e.verdict.reason})" if e.verdict.reason else "")),
    ]
    rows += [
        ("finding", f"{f.name} in {f.part or '(message)'} by {f.engine}")
        for f in e.verdict.findings
    ]
    rows += [
        ("sender", env.sender or "<>"),
        ("recipients", ", ".join(env.recipients)),
        (
            "client",
            f"{env.client_address or '-'} ({env.client_name or '-'}, helo {env.helo or '-'})",
        ),
        ("queue id", env.queue_id or "-"),
        ("point", f"{env.point.value} via {env.agent}, {env.direction.value}"),
        ("subject", e.subject),
        ("size", f"{e.size} bytes, sha256 {e.sha256}"),
    ]
    if e.released:
        rows.append(("released", f"{_utc(e.released)} UTC to {', '.join(e.released_to)}"))
    return rows


def _release(store: QuarantineStore, qid: str, args: argparse.Namespace, config: Config) -> int:
    entry = store.get(parse_id(qid))
    if entry.released and not args.force:
        return fail(
            f"{entry.id} was already released on {_utc(entry.released)} UTC to "
            f"{', '.join(entry.released_to)}; use --force to release it again"
        )
    section = config["release"]
    try:
        secret = load_secret(Path(section["secret_file"]), create=True)
        result = asyncio.run(
            release(
                store,
                entry.id,
                secret=secret,
                recipients=args.to or None,
                **release_options(section),
            )
        )
    except ReleaseError as exc:
        return fail(str(exc), 1)
    refused = "".join(f"\n  refused {r}: {why}" for r, why in result.refused.items())
    _say(
        args,
        {"id": result.qid, "accepted": list(result.accepted), "refused": result.refused},
        f"released {result.qid} to {', '.join(result.accepted)}{refused}",
    )
    return 0


def _purge(store: QuarantineStore, args: argparse.Namespace, config: Config) -> int:
    purged = purge_expired(store, config["store"], now=time.time())
    _say(
        args,
        {"messages": purged.messages, "events": purged.events},
        f"purged {purged.messages} quarantined messages and {purged.events} history events",
    )
    return 0


def _say(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data) if args.json else text)


def _utc(stamp: float) -> str:
    return dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
