"""From the pipeline's result to milter replies: header edits, then the final answer.

The pipeline already decided and carried out the action (our quarantine
store holds a copy when the policy keeps one).  This module only says how
the MTA is told, for one message that has one answer for every recipient::

    packets = replies(done, headers, allowed=negotiated_actions, host=host, mta_hold=False)

=============  ==========================================================
policy         milter replies
=============  ==========================================================
accept, tag    CHGHEADER (strip forged ``X-Virus-*`` and the release mark,
               tag the Subject), ADDHEADER (``X-Virus-Scanned``,
               ``X-Virus-Status``), then ACCEPT
reject         REPLYCODE ``554 5.7.1 Infected: <signature>``
defer          REPLYCODE ``451 4.7.1 ...``: the client retries later
discard        DISCARD: the client is told 250, nobody gets the mail
quarantine     DISCARD (our store has the copy); with ``mta_hold``, the
               headers, QUARANTINE (the MTA's hold queue) and ACCEPT
=============  ==========================================================

Header edits need the actions the MTA granted in OPTNEG; without them
the message passes unedited and a warning says so once per connection.

SECURITY: reply texts and header values come from the policy (signature
names and reasons through ``safe_text``) and the protocol module strips
NUL/CR/LF again; nothing from the message reaches a reply.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailwarden.actions import Done
from mailwarden.actions.headers import RELEASE_HEADER, rewrite, scanned_value
from mailwarden.intercept.milter import protocol as p
from mailwarden.policy import ActionKind

#: the reply when the message is larger than ``max_message_size``
TOO_BIG = "552 5.3.4 Message too big for scanning"
#: the reply when something inside the milter failed
INTERNAL = "451 4.3.0 Temporary failure in the virus scanner; try again later"


def replies(
    done: Done,
    headers: Sequence[tuple[str, bytes]],
    *,
    allowed: p.Act,
    host: str,
    mta_hold: bool,
    leading_space: bool = False,
) -> tuple[list[bytes], list[str]]:
    """The packets to send at the end of the message, and warnings worth logging.

    ``leading_space``: HDR_LEADSPC was negotiated, so the MTA takes header
    values as they stand after the colon, and we give the space ourselves.
    """
    action = done.action
    kind = action.whole.kind
    warnings: list[str] = []
    if kind in (ActionKind.REJECT, ActionKind.DEFER):
        return [p.reply_code(str(action.whole.reply))], warnings
    if kind is ActionKind.DISCARD:
        return [p.encode(p.Reply.DISCARD)], warnings
    hold = kind is ActionKind.QUARANTINE
    if hold and not (mta_hold and p.Act.QUARANTINE in allowed):
        if mta_hold:
            warnings.append("the MTA did not grant QUARANTINE: discarded (the store has the copy)")
        return [p.encode(p.Reply.DISCARD)], warnings
    packets = header_edits(
        done,
        headers,
        allowed=allowed,
        host=host,
        warnings=warnings,
        lead=" " if leading_space else "",
    )
    if hold:
        packets.append(p.quarantine(action.status))
    packets.append(p.encode(p.Reply.ACCEPT))
    return packets, warnings


def header_edits(
    done: Done,
    headers: Sequence[tuple[str, bytes]],
    *,
    allowed: p.Act,
    host: str,
    warnings: list[str],
    lead: str = "",
) -> list[bytes]:
    action = done.action
    outcome = action.whole
    packets: list[bytes] = []
    drop = {name.lower() for name in (*action.strip, RELEASE_HEADER)}
    tag = outcome.subject_tag
    wants_change = bool(tag) or any(name.lower() in drop for name, _ in headers)
    if wants_change and p.Act.CHGHDRS not in allowed:
        warnings.append("the MTA did not grant CHGHDRS: headers not stripped, subject not tagged")
    elif wants_change:
        packets.extend(_strip(headers, drop))
        packets.extend(_tag(headers, tag, lead))
    if action.add_headers:
        if p.Act.ADDHDRS not in allowed:
            warnings.append("the MTA did not grant ADDHDRS: no X-Virus-* headers")
        else:
            packets.append(p.add_header("X-Virus-Scanned", lead + scanned_value(host)))
            packets.append(p.add_header("X-Virus-Status", lead + action.status))
    return packets


def _strip(headers: Sequence[tuple[str, bytes]], drop: set[str]) -> list[bytes]:
    packets: list[bytes] = []
    for wanted in sorted(drop):
        count = sum(1 for name, _ in headers if name.lower() == wanted)
        # last first, so an MTA that renumbers after a deletion still finds the others
        for index in range(count, 0, -1):
            name = next(n for n, _ in headers if n.lower() == wanted)
            packets.append(p.change_header(index, name, ""))
    return packets


def _tag(headers: Sequence[tuple[str, bytes]], tag: str, lead: str) -> list[bytes]:
    if not tag:
        return []
    subjects = [value for name, value in headers if name.lower() == "subject"]
    if not subjects:
        return [p.add_header("Subject", lead + tagged_subject(b"", tag))]
    packets: list[bytes] = []
    for index, value in enumerate(subjects, start=1):
        new = tagged_subject(value, tag)
        if new != _unfold(value):
            packets.append(p.change_header(index, "Subject", lead + new))
    return packets


def tagged_subject(value: bytes, tag: str) -> str:
    """The Subject value with ``tag`` in front, as ``actions.headers`` tags delivered copies."""
    field = b"Subject: " + value.lstrip(b" \t") + b"\r\n\r\n"
    out = rewrite(field, subject_tag=tag)
    header = out.split(b"\r\n\r\n", 1)[0]
    return _unfold(header.partition(b":")[2])


def _unfold(value: bytes) -> str:
    flat = value.replace(b"\r\n", b"\n").replace(b"\n", b"").strip(b" \t")
    return p.text(flat)
