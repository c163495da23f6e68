"""The `__cluster_metadata` feed: a bounded ring of recent journal records served as Kafka record
batches (one record per journal record, value = JSON), with a snapshot record for offsets the ring
no longer holds, long-poll waiting, and the JSON record codec the client shares.
"""
from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from typing import Any

from sandbox.protocol.records import encode_batch

from .controller import Coordinator

METADATA_TOPIC = "__cluster_metadata"
METADATA_PARTITION = 0
SNAPSHOT_TYPE = "snapshot"
DEFAULT_CAPACITY = 10_000


class OffsetOutOfRange(Exception):
    """A fetch offset past the end of the feed (the follower is ahead: the journal was reset)."""


def encode_record(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode("utf-8")


def decode_record(value: bytes | None) -> dict[str, Any]:
    doc = json.loads(value or b"null")
    if not isinstance(doc, dict) or "type" not in doc:
        raise ValueError(f"not a metadata record: {value[:80]!r}")
    return doc


class MetadataFeed:
    """Records in offset order as the Coordinator commits them. A fetch below the ring's first
    offset gets ONE record `{"type": "snapshot", "state": ...}` of the current state, at offset
    high_watermark - 1 (the last offset it covers), so the follower continues at the watermark."""

    def __init__(self, coordinator: Coordinator, capacity: int = DEFAULT_CAPACITY) -> None:
        self._coord = coordinator
        self._ring: deque[tuple[int, bytes]] = deque(maxlen=max(1, capacity))
        self._changed = asyncio.Event()
        self._unsubscribe = coordinator.subscribe(self._on_records)

    def _on_records(self, records: list[dict]) -> None:
        first = self._coord.metadata_offset - len(records)
        for i, record in enumerate(records):
            self._ring.append((first + i, encode_record(record)))
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def close(self) -> None:
        self._unsubscribe()

    @property
    def high_watermark(self) -> int:
        return self._coord.metadata_offset

    @property
    def start_offset(self) -> int:
        """The first offset served as itself (older ones are answered with the snapshot)."""
        return self._ring[0][0] if self._ring else self.high_watermark

    def read(self, offset: int, max_bytes: int) -> bytes:
        """Record batch bytes from `offset` (b"" when caught up); at least one record."""
        hw = self.high_watermark
        if offset < 0 or offset > hw:
            raise OffsetOutOfRange(f"offset {offset} is outside 0..{hw}")
        if offset == hw:
            return b""
        start = self.start_offset
        if offset < start:
            snap = {"type": SNAPSHOT_TYPE, "state": self._coord.state().to_dict()}
            return encode_batch(hw - 1, [encode_record(snap)])
        values: list[bytes] = []
        size = 0
        for _off, value in itertools.islice(self._ring, offset - start, None):
            if values and size + len(value) + 32 > max_bytes:
                break
            values.append(value)
            size += len(value) + 32
        return encode_batch(offset, values)

    async def wait_beyond(self, offset: int, timeout: float) -> None:
        """Return once the watermark passes `offset`, or after `timeout` seconds."""
        if self.high_watermark > offset or timeout <= 0:
            return
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except asyncio.TimeoutError:
            pass
