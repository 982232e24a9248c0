"""Compile body patterns ahead, in a second process, while the loader parses.

Compiling the hex patterns of ``.ndb`` and ``.ldb`` lines is most of what a
cold load of a big body database costs, and :func:`compile_hexsig` is a pure
function of the pattern text and its modifiers.  So, while the loader parses
the body databases from the first line on, :func:`start` runs this module as
a child process (a fresh interpreter) that walks the same lines from the *last*
one back, compiles every pattern it finds and streams the results over a
pipe.  The parser asks :meth:`Precompiled.take` before it compiles a
pattern, and compiles it itself on a miss; the two meet somewhere in the
middle, and the parser's last stretch costs it no compiling at all.

The child is only a cache in front of :func:`compile_hexsig`: the parser
loads, skips and rejects exactly what it would alone, and names the same
line in an error.  A child that fails to start, dies or sends something
unreadable costs nothing but the time it would have saved; the loader
stops it when the parse is done.

Frames on the pipe: ``u32 length``, then ``u32 index`` (the pattern's place
in the parser's order, which tells the parser where the child is) and the
record (see :func:`_encode`).

SECURITY: the child is this package run as the same user with the same
files; it writes only to the pipe.  The parent still checks every frame's
lengths and stops reading at the first bad one.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from mailwarden.engine.signatures import cvd
from mailwarden.engine.signatures.hexsig import CompiledPattern, compile_hexsig, is_plain
from mailwarden.engine.signatures.offsets import MalformedSignature, UnsupportedSignature
from mailwarden.engine.signatures.packed import decode_atoms, encode_atoms
from mailwarden.engine.signatures.parsers import split_subsig

#: body database kinds the child reads
BODY_EXTS = frozenset({"ndb", "ldb"})
#: the parser looks at the pipe once per this many patterns
_POLL_EVERY = 128
_LEN = struct.Struct(">I")
_INDEX = struct.Struct(">I")
_HEAD = struct.Struct(">BIIIIIII")  # flags, min_len, then six field lengths
_MAX_FRAME = 1 << 26
_BATCH = 1 << 16


class Precompiled:
    """The parent's side: patterns the child has compiled so far."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self._pipe = proc.stdout
        self._fd = -1 if self._pipe is None else self._pipe.fileno()
        if self._fd >= 0:
            os.set_blocking(self._fd, False)
        self._buf = bytearray()
        self._ready: dict[tuple[str, str], CompiledPattern] = {}
        self._calls = 0
        #: the lowest index (in the parser's order) the child has compiled
        self._frontier = 1 << 32
        #: patterns the parser took from the child
        self.hits = 0

    def take(self, text: str, modifiers: str) -> CompiledPattern | None:
        """The child's compilation of this pattern, if it has sent one."""
        self._calls += 1
        if self._calls % _POLL_EVERY == 0:
            self._poll()
            if self._calls >= self._frontier:
                # the parser has reached what the child compiled: everything
                # after this is here or in the pipe, so the core is free again
                self._stop()
        found = self._ready.pop((text, modifiers), None)
        if found is not None:
            self.hits += 1
        return found

    def _poll(self) -> None:
        if self._fd < 0:
            return
        while True:
            try:
                chunk = os.read(self._fd, 1 << 20)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:  # the child is done (or gone): nothing more will come
                self._fd = -1
                break
            self._buf += chunk
        pos = 0
        buf = self._buf
        while pos + _LEN.size <= len(buf):
            (size,) = _LEN.unpack_from(buf, pos)
            if size > _MAX_FRAME:
                self._fd = -1  # not our framing: stop listening
                self._buf.clear()
                return
            if pos + _LEN.size + size > len(buf):
                break
            frame = bytes(buf[pos + _LEN.size : pos + _LEN.size + size])
            pos += _LEN.size + size
            decoded = _decode(frame[_INDEX.size :]) if len(frame) >= _INDEX.size else None
            if decoded is None:
                self._fd = -1
                self._buf.clear()
                return
            key, compiled = decoded
            self._ready[key] = compiled
            self._frontier = min(self._frontier, _INDEX.unpack_from(frame)[0])
        del buf[:pos]

    def _stop(self) -> None:
        """Stop the child; what it wrote stays readable in the pipe."""
        with contextlib.suppress(ProcessLookupError):
            self._proc.kill()

    def close(self) -> None:
        """Stop the child (it may still be compiling lines the parser has done)."""
        self._stop()
        if self._pipe is not None:
            self._pipe.close()
        self._proc.wait()
        self._ready.clear()


def start(sources: Sequence[tuple[Path, str]]) -> Precompiled | None:
    """Start the child on ``(path, ext)`` sources (files or containers), or None."""
    request = json.dumps([[str(p), ext] for p, ext in sources]).encode()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-P", "-c", f"import {__name__} as m; m.child_main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        return None
    stdin = proc.stdin
    if stdin is not None:
        with contextlib.suppress(BrokenPipeError):
            stdin.write(request)
        with contextlib.suppress(BrokenPipeError):
            stdin.close()
    return Precompiled(proc)


# --- the child ---------------------------------------------------------------


def _patterns(sources: Sequence[tuple[Path, str]]) -> Iterator[tuple[str, str]]:
    """(pattern text, modifiers) of every body line, in the parser's order."""
    for path, ext in sources:
        if ext in cvd.CONTAINER_EXTS:
            _, members = cvd.members(path)
            texts = [
                (data.decode("utf-8", "surrogateescape"), name.rsplit(".", 1)[-1].lower())
                for name, data in members
                if name.rsplit(".", 1)[-1].lower() in BODY_EXTS
            ]
        else:
            texts = [(path.read_bytes().decode("utf-8", "surrogateescape"), ext)]
        for text, kind in texts:
            for raw in text.split("\n"):
                line = raw.strip("\r\n\t ")
                if not line or line.startswith("#"):
                    continue
                if kind == "ndb":
                    parts = line.split(":")
                    if 4 <= len(parts) <= 6:
                        yield parts[3], ""
                    continue
                for sub in line.split(";")[3:]:
                    try:
                        hexsig, modifiers, _ = split_subsig(sub)
                    except UnsupportedSignature:
                        continue
                    yield hexsig, modifiers


def _encode(text: str, modifiers: str, c: CompiledPattern) -> bytes:
    fields = [
        text.encode("utf-8", "surrogateescape"),
        modifiers.encode(),
        c.regex,
        c.hs,
        encode_atoms(c.atoms),
        c.plan,
    ]
    flags = int(c.exact) | int(c.caseless) << 1
    head = _HEAD.pack(flags, c.min_len, *(len(f) for f in fields))
    return head + b"".join(fields)


def _decode(frame: bytes) -> tuple[tuple[str, str], CompiledPattern] | None:
    if len(frame) < _HEAD.size:
        return None
    flags, min_len, *sizes = _HEAD.unpack_from(frame)
    if _HEAD.size + sum(sizes) != len(frame) or flags > 3:
        return None
    fields: list[bytes] = []
    pos = _HEAD.size
    for size in sizes:
        fields.append(frame[pos : pos + size])
        pos += size
    try:
        text = fields[0].decode("utf-8", "surrogateescape")
        modifiers = fields[1].decode()
        atoms = decode_atoms(fields[4])
    except (UnicodeDecodeError, ValueError):
        return None
    compiled = CompiledPattern(
        fields[2], fields[3], bool(flags & 1), bool(flags & 2), atoms, min_len, fields[5]
    )
    return (text, modifiers), compiled


def child_main() -> None:
    """The child: source list on stdin, compiled patterns on stdout."""
    sources = [(Path(p), str(ext)) for p, ext in json.loads(sys.stdin.buffer.read())]
    out = sys.stdout.buffer
    batch = bytearray()
    items = list(_patterns(sources))
    # from the last pattern back, while the parser goes from the first on
    for index in reversed(range(len(items))):
        text, modifiers = items[index]
        if not modifiers and is_plain(text):
            continue  # the parser's own fast path is cheaper than a frame
        try:
            compiled = compile_hexsig(text, modifiers)
        except (MalformedSignature, UnsupportedSignature, ValueError):
            continue  # the parser meets the same error on its own
        frame = _INDEX.pack(index) + _encode(text, modifiers, compiled)
        batch += _LEN.pack(len(frame)) + frame
        if len(batch) >= _BATCH:
            if not _write(out, batch):
                return
            batch.clear()
    _write(out, batch)


def _write(out: BinaryIO, data: bytearray) -> bool:
    """Write and flush; False when the parser has stopped reading."""
    try:
        out.write(data)
        out.flush()
    except BrokenPipeError:
        return False
    return True
