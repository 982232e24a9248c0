"""atheris harness: any bytes through the clamd command framer and parser.

Run by hand::

    .venv/bin/python tests/fuzz/atheris/clamd_session.py -runs=1000000

Property: framing a stream whole or in two pieces gives the same commands;
only ``CommandTooLong`` escapes; every parsed command is a known one.

SECURITY: test-only.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from mailwarden.daemon import protocol as p


def _frame(pieces: list[bytes]) -> list[p.RawCommand] | None:
    framer = p.CommandFramer(limit=512)
    out: list[p.RawCommand] = []
    try:
        for piece in pieces:
            framer.feed(piece)
            while (raw := framer.next_command()) is not None:
                out.append(raw)
                cmd = p.parse_command(raw)
                if cmd is not None and cmd.name not in p.COMMANDS:
                    raise AssertionError(cmd)
    except p.CommandTooLong:
        return None
    return out


def one_input(data: bytes) -> None:
    if not data:
        return
    body = data[1:]
    cut = data[0] % (len(body) + 1)
    whole = _frame([body])
    split = _frame([body[:cut], body[cut:]])
    if whole is not None and split is not None and whole != split:
        raise AssertionError((whole, split))


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
