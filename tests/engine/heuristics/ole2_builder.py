"""A minimal OLE2 (Compound File Binary, version 3) writer for tests.

Builds documents with chosen storages and streams so the macro heuristic can
be tested without binary fixtures.  Every stream is padded to the 4096-byte
mini-stream cutoff, so only regular sectors and one FAT sector are needed.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field

SECTOR = 512
MINI_CUTOFF = 4096
END_OF_CHAIN = 0xFFFFFFFE
FAT_SECT = 0xFFFFFFFD
FREE = 0xFFFFFFFF
NO_STREAM = 0xFFFFFFFF


@dataclass
class Node:
    name: str
    data: bytes | None = None  # None: a storage
    children: list[Node] = field(default_factory=list)


def stream(name: str, data: bytes) -> Node:
    return Node(name, data.ljust(MINI_CUTOFF, b"\x00"))


def storage(name: str, *children: Node) -> Node:
    return Node(name, None, list(children))


def build(*children: Node, clsid: str | None = None) -> bytes:
    """Serialise a root storage holding ``children``, of class ``clsid`` if given."""
    root = Node("Root Entry", None, list(children))
    order: list[Node] = []

    def number(node: Node) -> None:
        order.append(node)
        for child in node.children:
            number(child)

    number(root)
    index = {id(node): i for i, node in enumerate(order)}
    dir_sectors = (len(order) * 128 + SECTOR - 1) // SECTOR
    fat: list[int] = [FAT_SECT]
    fat += [*range(2, 1 + dir_sectors), END_OF_CHAIN]
    starts: dict[int, int] = {}
    body = b""
    for node in order:
        if node.data is None:
            continue
        first = len(fat)
        count = len(node.data) // SECTOR + (len(node.data) % SECTOR > 0)
        fat += [*range(first + 1, first + count), END_OF_CHAIN]
        starts[id(node)] = first
        body += node.data.ljust(count * SECTOR, b"\x00")
    assert len(fat) <= SECTOR // 4, "test document too large for one FAT sector"

    # siblings form a right-leaning chain: a valid, if unbalanced, tree
    right_of = {
        id(kid): index[id(nxt)]
        for node in order
        for kid, nxt in zip(node.children, node.children[1:], strict=False)
    }
    entries = b""
    for node in order:
        kind = 5 if node is root else (1 if node.data is None else 2)
        child = index[id(node.children[0])] if node.children else NO_STREAM
        right = right_of.get(id(node), NO_STREAM)
        name = node.name.encode("utf-16-le") + b"\x00\x00"
        start = starts.get(id(node), END_OF_CHAIN if node is root else 0)
        size = len(node.data) if node.data is not None else 0
        entries += struct.pack(
            "<64sHBBIII16sIQQIQ",
            name,
            len(name),
            kind,
            1,
            NO_STREAM,
            right,
            child,
            uuid.UUID(clsid).bytes_le if clsid and node is root else b"\x00" * 16,
            0,
            0,
            0,
            start,
            size,
        )
    entries = entries.ljust(dir_sectors * SECTOR, b"\x00")
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        b"\x00" * 16,
        0x3E,
        3,
        0xFFFE,
        9,
        6,
        b"\x00" * 6,
        0,
        1,
        1,
        0,
        MINI_CUTOFF,
        END_OF_CHAIN,
        0,
        END_OF_CHAIN,
        0,
    )
    header += struct.pack("<109I", 0, *([FREE] * 108))
    fat_sector = struct.pack(f"<{SECTOR // 4}I", *fat, *([FREE] * (SECTOR // 4 - len(fat))))
    return header + fat_sector + entries + body
