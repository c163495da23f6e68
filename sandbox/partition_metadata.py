"""Kafka's `partition.metadata` file of a partition folder: the id of the topic the folder belongs
to, so a folder the metadata lost (a destroyed coordinator journal) is put back under the topic id
clients knew. Written by the broker's logs (sandbox.log); read by them and by the supervisor's
restore (native mode), which ranks a folder naming another topic's id below one naming the
catalog's. A file format, so it sits apart from both."""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path

PARTITION_METADATA = "partition.metadata"


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
