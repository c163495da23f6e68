"""The consumer protocol embedded in classic groups' JoinGroup and SyncGroup bytes (Kafka's
ConsumerProtocolSubscription and ConsumerProtocolAssignment, versions 0-3): what a consumer
subscribes to, the partitions it owns, and the partitions it is given. Every version shares one
layout (int16 version, then non-flexible fields; later versions only add fields at the end):

    Subscription: topics [string], user_data bytes, v1+ owned_partitions [topic string,
                  partitions [int32]], v2+ generation_id int32, v3+ rack_id string
    Assignment:   assigned_partitions [topic string, partitions [int32]], user_data bytes

The broker reads them to turn a classic group into a consumer group and to hand classic members
of a consumer group their partitions; the client reads assignments for `groups describe`."""

from __future__ import annotations

import struct
from typing import NamedTuple


class Subscription(NamedTuple):
    version: int
    topics: list[str]
    user_data: bytes | None
    owned: list[tuple[str, int]]    # (topic, partition): v1+, empty before
    generation: int                 # v2+, -1 before
    rack: str | None                # v3+


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = bytes(data), 0

    def _unpack(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def int16(self) -> int:
        return self._unpack(">h")

    def int32(self) -> int:
        return self._unpack(">i")

    def string(self) -> str | None:
        n = self.int16()
        if n < 0:
            return None
        if self.pos + n > len(self.data):
            raise ValueError("string past the end")
        out = self.data[self.pos:self.pos + n].decode("utf-8")
        self.pos += n
        return out

    def bytes_(self) -> bytes | None:
        n = self.int32()
        if n < 0:
            return None
        if self.pos + n > len(self.data):
            raise ValueError("bytes past the end")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def count(self) -> int:
        n = self.int32()
        if n > len(self.data) - self.pos:
            raise ValueError("array longer than the bytes left")
        return max(n, 0)

    def partitions(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for _ in range(self.count()):
            topic = self.string() or ""
            n = self.count()
            parts = list(struct.unpack_from(f">{n}i", self.data, self.pos))
            self.pos += 4 * n
            out.setdefault(topic, []).extend(parts)
        return out

    def more(self) -> bool:
        return self.pos < len(self.data)


def decode_subscription(data: bytes) -> Subscription | None:
    """A ConsumerProtocolSubscription, or None when the bytes are not one."""
    try:
        r = _Reader(data)
        version = r.int16()
        if version < 0:
            return None
        topics = [r.string() or "" for _ in range(r.count())]
        user_data = r.bytes_()
        owned: list[tuple[str, int]] = []
        generation, rack = -1, None
        if version >= 1 and r.more():
            owned = [(t, p) for t, ps in r.partitions().items() for p in ps]
        if version >= 2 and r.more():
            generation = r.int32()
        if version >= 3 and r.more():
            rack = r.string()
        return Subscription(version, topics, user_data, owned, generation, rack)
    except (struct.error, UnicodeDecodeError, ValueError):
        return None


def decode_assignment(data: bytes) -> tuple[dict[str, list[int]], bytes | None] | None:
    """(topic -> partitions, user data) of a ConsumerProtocolAssignment; None when the bytes are
    not one. Empty bytes (a member that never synced) are an empty assignment."""
    if not data:
        return {}, None
    try:
        r = _Reader(data)
        if r.int16() < 0:
            return None
        parts = r.partitions()
        return parts, (r.bytes_() if r.more() else None)
    except (struct.error, UnicodeDecodeError, ValueError):
        return None


def encode_assignment(partitions: dict[str, list[int]], version: int = 0, user_data: bytes | None = None) -> bytes:
    """A ConsumerProtocolAssignment of `version` (0-3 share one layout)."""
    out = [struct.pack(">hi", max(0, min(version, 3)), len(partitions))]
    for topic, parts in partitions.items():
        name = topic.encode("utf-8")
        out.append(struct.pack(f">h{len(name)}si{len(parts)}i", len(name), name, len(parts), *parts))
    out.append(struct.pack(">i", -1) if user_data is None else struct.pack(">i", len(user_data)) + user_data)
    return b"".join(out)
