"""Fuzzing qmail-queue's envelope reader on a real pipe (descriptor 1's protocol).

tests/intercept/qmail/test_envelope.py fuzzes ``parse_envelope`` on whole
buffers; here the envelope arrives through a pipe in arbitrary writes, as a
client of qmail-queue may send it, damaged by flips and cuts.  Property:
``read_envelope`` returns what ``parse_envelope`` gives for the bytes up to
``envelope_end``, or raises ``EnvelopeError``; it returns as soon as the
final NUL is in, and never reads past it.
"""

from __future__ import annotations

import os
import threading

from hypothesis import given
from hypothesis import strategies as st

from fuzz.budget import fuzz
from mailwarden.intercept.qmail.envelope import (
    EnvelopeError,
    encode_envelope,
    envelope_end,
    parse_envelope,
    read_envelope,
)

_address = st.text(max_size=20).filter(lambda t: "\0" not in t)


@st.composite
def _envelopes(draw: st.DrawFn) -> bytes:
    data = bytearray(encode_envelope(draw(_address), draw(st.lists(_address, max_size=4))))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, 2**16 - 1)) * len(data) >> 16
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip" and data:
            data[at] = draw(st.sampled_from([0, ord("F"), ord("T"), 0xFF]))
        elif op == "cut":
            del data[at:]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@fuzz(300)
@given(
    envelope=_envelopes(),
    trailer=st.binary(max_size=16),
    cuts=st.lists(st.integers(0, 10**6), max_size=5),
)
def test_read_envelope_through_a_pipe(envelope: bytes, trailer: bytes, cuts: list[int]) -> None:
    wire = envelope + trailer
    points = sorted({c % (len(wire) + 1) for c in cuts})
    read_fd, write_fd = os.pipe()

    def write() -> None:
        start = 0
        try:
            for point in [*points, len(wire)]:
                os.write(write_fd, wire[start:point])
                start = point
        except BrokenPipeError:
            pass
        finally:
            os.close(write_fd)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        got = read_envelope(read_fd, limit=4096)
    except EnvelopeError:
        got = None
    finally:
        writer.join(10)
        os.close(read_fd)
    assert not writer.is_alive()
    if got is None:
        return
    end = envelope_end(wire)
    assert end is not None
    assert got == parse_envelope(wire[:end])
