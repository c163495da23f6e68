"""What a broker holds of a partition, asked by another broker putting back a topic the
metadata lost (sandbox.broker.disk_folders): each copy's log end, newest leader epoch and the
topic id its folder names (DescribeLogDirs with this sandbox's tag, then ListOffsets with Kafka's
debugging replica id)."""

from __future__ import annotations

import logging
import uuid
from typing import NamedTuple

from sandbox.client.async_connection import ExchangeFailed
from sandbox.protocol import build, request_class

from .transactions.links import BrokerLinks

log = logging.getLogger("sandbox.broker")

HELD_ASK_TIMEOUT_S = 5.0   # another broker asked which folders of a lost topic it holds


class Copy(NamedTuple):
    """One broker's folder of a partition: where its log ends, the newest leader epoch in it, and
    the topic id its partition.metadata names with when that was written (None: not told)."""
    end: int
    epoch: int
    folder: tuple[uuid.UUID, float] | None = None

    def other(self, topic_id: uuid.UUID | None) -> bool:
        """Whether the folder names another topic of that name than `topic_id`."""
        return topic_id is not None and self.folder is not None and self.folder[0] != topic_id


Held = dict[str, dict[int, dict[int, Copy]]]   # topic -> partition -> broker -> its copy


async def held_by(links: BrokerLinks, broker: int, probe: dict[str, range]
                   ) -> dict[tuple[str, int], Copy] | None:
    """What one broker holds of the topics' partitions in `probe`; None if it did not answer."""
    conn = links.get(broker)
    if conn is None:
        return None
    try:
        dirs = await conn.request(build(request_class(35, 4), {"folder_ids": True, "topics": [
            {"topic": t, "partitions": list(r)} for t, r in sorted(probe.items())]}), HELD_ASK_TIMEOUT_S)
        parts: dict[str, list[int]] = {}
        folders: dict[tuple[str, int], tuple[uuid.UUID, float]] = {}
        for result in dirs.results:
            for t in result.topics:
                if t.name in probe:
                    parts.setdefault(t.name, []).extend(int(p.partition_index) for p in t.partitions)
                    folders.update({(t.name, int(p.partition_index)): (p.topic_id, p.metadata_written_ms / 1000)
                                    for p in t.partitions if p.topic_id.int and p.metadata_written_ms >= 0})
        if not parts:
            return {}
        ends = await conn.request(build(request_class(2, 7), {
            "replica_id": -2, "isolation_level": 0,
            "topics": [{"name": t, "partitions": [{"partition_index": i, "current_leader_epoch": -1,
                                                   "timestamp": -1} for i in sorted(ps)]}
                       for t, ps in sorted(parts.items())]}), HELD_ASK_TIMEOUT_S)
    except ExchangeFailed as e:
        log.info("broker %d not asked which folders it holds: %s", broker, e)
        return None
    return {(t.name, int(p.partition_index)): Copy(int(p.offset), int(p.leader_epoch),
                                                   folders.get((t.name, int(p.partition_index))))
            for t in ends.topics for p in t.partitions if int(p.error_code) == 0}
