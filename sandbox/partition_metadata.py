"""Kafka's `partition.metadata` file of a partition folder: the id of the topic the folder belongs
to, so a folder the metadata lost (a destroyed coordinator journal) is put back under the topic id
clients knew. Written by the broker's logs (sandbox.log); read by them and by the supervisor's
restore (native mode) and told to other brokers (DescribeLogDirs' tagged fields): a folder naming
another topic's id than the topic's latest making ranks below one naming it. A file format and the
rule read from it, so they sit apart from both."""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path

PARTITION_METADATA = "partition.metadata"
# written into a deleted partition's folder that could not be removed yet (on Windows: another
# program holds one of its files, and such a folder can be neither renamed nor removed). A new file
# can be made in it meanwhile. A folder holding it is a deleted one: never opened again as a
# partition, removed at the next start that can, and naming no topic id to a restore.
DELETED_MARK = "partition.deleted"


def kafka_uuid(u: uuid.UUID) -> str:
    """A UUID as Kafka writes it (Uuid.toString: URL-safe base64 without padding)."""
    return base64.urlsafe_b64encode(u.bytes).decode("ascii").rstrip("=")


def read_partition_metadata(path: Path) -> uuid.UUID | None:
    """The topic id a partition.metadata names; None if it is unreadable or malformed (it is
    only a hint for putting a lost topic back)."""
    try:   # one read of a small file per partition at start: os-level, no text layer
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            data = os.read(fd, 512)
        finally:
            os.close(fd)
        fields = dict(line.split(b":", 1) for line in data.splitlines() if b":" in line)
        if fields.get(b"version", b"").strip() != b"0":
            return None
        raw = fields[b"topic_id"].strip()
        u = uuid.UUID(bytes=base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4)))
    except (OSError, ValueError, KeyError):
        return None
    return u if u.int else None


def folder_topic_id(folder: Path) -> tuple[uuid.UUID, float] | None:
    """The topic id a partition folder's partition.metadata names and when that file was written
    (seconds since the epoch); None where it cannot tell (no such folder or file, or unreadable)
    or the folder is a deleted one (DELETED_MARK)."""
    if os.path.lexists(folder / DELETED_MARK):
        return None
    path = folder / PARTITION_METADATA
    topic_id = read_partition_metadata(path)
    try:
        return (topic_id, path.stat().st_mtime) if topic_id is not None else None
    except OSError:
        return None


def newest_topic_id(known_id: uuid.UUID | None, folders: list[tuple[uuid.UUID, float]],
                    known_since: float | None) -> uuid.UUID | None:
    """The id of a topic's latest making: `known_id` (the id a record of the topic knew, read at
    `known_since`), unless a folder naming another id was written since (or nothing says when it
    was read): then the id of the folder written last. None where nothing tells (no known id and
    no folder). A topic deleted and made again while a broker was down leaves that broker's folder
    naming the older id, written before the newer topic's folders."""
    newer = [f for f in folders if f[0] != known_id and (known_since is None or f[1] >= known_since)]
    if newer:
        return max(newer, key=lambda f: f[1])[0]
    return known_id
