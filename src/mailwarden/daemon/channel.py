"""Framed messages between the daemon's processes, with file descriptors riding along.

The front end, each generation's loader and its workers talk over unix
socket pairs.  A frame is a 4-byte big-endian length, a JSON header of that
length and then, when the header says ``"size": N``, N payload bytes.  File
descriptors (a worker's socket, a spooled stream, a FILDES file) travel with
the header as ``SCM_RIGHTS``.  Blocking functions serve the loader and the
workers; the ``a``-prefixed coroutines serve the asyncio front end::

    send_frame(sock, {"kind": "bytes", "size": len(data)}, data)
    header, payload, fds = recv_frame(sock)
    header, payload, fds = await arecv_frame(sock)

SECURITY: both ends are processes of the daemon itself, created with
``socketpair``; nothing outside can reach these sockets.  Frames are still
bounded (:data:`MAX_HEADER`) so a confused peer cannot exhaust memory, and
descriptors received beyond those expected are closed.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import json
import os
import socket
import struct
from collections.abc import Sequence
from typing import Any

MAX_HEADER = 1024 * 1024
MAX_FDS = 4
_LEN = struct.Struct(">I")
_ANCILLARY = socket.CMSG_SPACE(MAX_FDS * array.array("i").itemsize)

Frame = tuple[dict[str, Any], bytes, list[int]]


class ChannelClosed(Exception):
    """The other process closed the channel (it exited or was killed)."""


def encode_header(header: dict[str, Any]) -> bytes:
    data = json.dumps(header, separators=(",", ":")).encode()
    return _LEN.pack(len(data)) + data


def take_fds(ancillary: list[tuple[int, int, bytes]]) -> list[int]:
    """The descriptors in ``recvmsg``'s ancillary data."""
    fds: list[int] = []
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(data) - len(data) % array.array("i").itemsize
            fds.extend(array.array("i", data[:usable]))
    return fds


def close_fds(fds: Sequence[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


# --- blocking side (loader, workers) -----------------------------------------


def send_frame(
    sock: socket.socket,
    header: dict[str, Any],
    payload: bytes | memoryview = b"",
    fds: Sequence[int] = (),
) -> None:
    data = encode_header(header)
    if fds:
        sent = sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        data = data[sent:]
    if data:
        sock.sendall(data)
    if payload:
        sock.sendall(payload)


def recv_frame(sock: socket.socket) -> Frame:
    fds: list[int] = []
    head = bytearray()
    while len(head) < _LEN.size:
        data, ancillary, _flags, _addr = sock.recvmsg(_LEN.size - len(head), _ANCILLARY)
        fds.extend(take_fds(ancillary))
        if not data:
            close_fds(fds)
            raise ChannelClosed("channel closed")
        head += data
    (length,) = _LEN.unpack(head)
    if length > MAX_HEADER:
        close_fds(fds)
        raise ChannelClosed(f"frame header too large ({length} bytes)")
    header = json.loads(_recv_exact(sock, length))
    size = int(header.get("size", 0)) if header.get("inline") else 0
    payload = _recv_exact(sock, size) if size else b""
    return header, payload, fds


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if not k:
            raise ChannelClosed("channel closed mid-frame")
        got += k
    return bytes(buf)


# --- asyncio side (front end) -------------------------------------------------


async def asend_frame(
    sock: socket.socket,
    header: dict[str, Any],
    payload: bytes | memoryview = b"",
    fds: Sequence[int] = (),
) -> None:
    loop = asyncio.get_running_loop()
    data = encode_header(header)
    if fds:
        while True:
            try:
                sent = sock.sendmsg(
                    [data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
                )
                break
            except BlockingIOError:
                await _wait(loop, sock, writable=True)
        data = data[sent:]
    try:
        if data:
            await loop.sock_sendall(sock, data)
        if payload:
            await loop.sock_sendall(sock, payload)
    except (BrokenPipeError, ConnectionResetError) as exc:
        raise ChannelClosed(str(exc)) from exc


async def arecv_frame(sock: socket.socket) -> Frame:
    loop = asyncio.get_running_loop()
    fds: list[int] = []
    head = bytearray()
    try:
        while len(head) < _LEN.size:
            try:
                data, ancillary, _flags, _addr = sock.recvmsg(_LEN.size - len(head), _ANCILLARY)
            except BlockingIOError:
                await _wait(loop, sock, writable=False)
                continue
            fds.extend(take_fds(ancillary))
            if not data:
                raise ChannelClosed("channel closed")
            head += data
        (length,) = _LEN.unpack(head)
        if length > MAX_HEADER:
            raise ChannelClosed(f"frame header too large ({length} bytes)")
        header = json.loads(await _arecv_exact(loop, sock, length))
        size = int(header.get("size", 0)) if header.get("inline") else 0
        payload = await _arecv_exact(loop, sock, size) if size else b""
    except ConnectionResetError as exc:
        close_fds(fds)
        raise ChannelClosed(str(exc)) from exc
    except BaseException:
        close_fds(fds)
        raise
    return header, payload, fds


async def _arecv_exact(loop: asyncio.AbstractEventLoop, sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = await loop.sock_recv_into(sock, view[got:])
        if not k:
            raise ChannelClosed("channel closed mid-frame")
        got += k
    return bytes(buf)


async def _wait(loop: asyncio.AbstractEventLoop, sock: socket.socket, *, writable: bool) -> None:
    """Until ``sock`` is readable (or writable); for calls asyncio has no wrapper for."""
    ready: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if writable:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        if writable:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


async def wait_readable(sock: socket.socket) -> None:
    await _wait(asyncio.get_running_loop(), sock, writable=False)
