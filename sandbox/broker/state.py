"""What one broker owns: its partition logs, the embedded coordinator, groups, producer ids.

One asyncio loop owns all of it, so there are no locks. Handlers reach everything through here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from sandbox.coordinator import Coordinator, CoordinatorError
from sandbox.log import LogConfig, LogDir, PartitionLog

from .config import BrokerConfig
from .groups import GroupCoordinator
from .offsets import OffsetStore

log = logging.getLogger("sandbox.broker")

METADATA_DIR = "__metadata"
OFFSETS_DIR = "__consumer_offsets"
PRODUCER_ID_BLOCK = 1000


class Notifier:
    """Wakes long-polling fetches when a partition they wait on gets new data."""

    def __init__(self) -> None:
        self._waiters: dict[tuple[str, int], set[asyncio.Future]] = {}

    def waiter(self, keys: list[tuple[str, int]]) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        for k in keys:
            self._waiters.setdefault(k, set()).add(fut)
        return fut

    def discard(self, keys: list[tuple[str, int]], fut: asyncio.Future) -> None:
        for k in keys:
            s = self._waiters.get(k)
            if s is not None:
                s.discard(fut)
                if not s:
                    del self._waiters[k]

    def notify(self, key: tuple[str, int]) -> None:
        s = self._waiters.pop(key, None)
        if s:
            for fut in s:
                if not fut.done():
                    fut.set_result(None)


def emit_event(kind: str, detail: dict[str, Any]) -> None:
    """One log line per event, machine-readable after the `EVENT kind` prefix."""
    log.warning("EVENT %s %s", kind, json.dumps(detail, default=str, sort_keys=True))


class BrokerState:
    def __init__(self, config: BrokerConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.node_id = config.node_id
        data = Path(config.data_dir)
        data.mkdir(parents=True, exist_ok=True)
        self.logs = LogDir(data, config.log, clock=clock, on_event=emit_event)
        self.partitions: dict[tuple[str, int], PartitionLog] = {}
        self.coordinator: Coordinator | None = None
        self.groups: GroupCoordinator | None = None
        self.offsets: OffsetStore | None = None
        self.notifier = Notifier()
        self._pid_next = 0
        self._pid_end = 0
        self.started_at = time.monotonic()

    # ---- lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        data = Path(self.config.data_dir)
        self.partitions = dict(self.logs.open())
        self.coordinator = Coordinator(
            data / METADATA_DIR,
            default_partitions=self.config.num_partitions,
            on_event=emit_event,
        )
        host, port = self.config.advertised
        self.coordinator.register_broker(self.node_id, host, port, None, uuid.uuid4())
        self._adopt_orphans()
        self.coordinator.subscribe(lambda _records: self.sync_partitions())
        self.offsets = OffsetStore(data / OFFSETS_DIR, fsync=self.config.offsets_fsync, on_event=emit_event)
        self.groups = GroupCoordinator(
            self.offsets, initial_rebalance_delay_ms=self.config.group_initial_rebalance_delay_ms
        )
        self.sync_partitions()

    def close(self) -> None:
        if self.offsets is not None:
            self.offsets.close()
        self.logs.close()
        if self.coordinator is not None:
            self.coordinator.close()

    def _adopt_orphans(self) -> None:
        """Partitions on disk that the metadata journal does not know (it was lost or wiped) are
        put back into the metadata instead of being deleted: data is never dropped silently."""
        assert self.coordinator is not None
        counts: dict[str, int] = {}
        for topic, index in self.partitions:
            counts[topic] = max(counts.get(topic, 0), index + 1)
        for topic, n in sorted(counts.items()):
            known = self.coordinator.topic(topic)
            try:
                if known is None:
                    self.coordinator.create_topic(topic, n, 1, {})
                elif len(known.partitions) < n:
                    self.coordinator.create_partitions(topic, n)
                else:
                    continue
            except CoordinatorError as e:
                log.error("cannot restore topic %r found on disk: %s", topic, e)
                continue
            emit_event("topic-restored", {"topic": topic, "partitions": n, "from": "journal on disk"})

    # ---- partitions ------------------------------------------------------------------------
    def log_config(self, configs: dict[str, str]) -> LogConfig:
        return LogConfig.from_topic_config(configs, base=self.config.log) if configs else self.config.log

    def sync_partitions(self) -> None:
        """Make the local logs match the coordinator: create missing, delete removed, re-config."""
        assert self.coordinator is not None
        wanted: dict[tuple[str, int], LogConfig] = {}
        for t in self.coordinator.topics():
            cfg = self.log_config(dict(t.configs))
            for p in t.partitions:
                if self.node_id in p.replicas:
                    wanted[(t.name, p.index)] = cfg
        for key in list(self.partitions):
            if key not in wanted:
                self.partitions.pop(key)
                self.logs.delete_partition(*key)
                self.notifier.notify(key)
        for key, cfg in wanted.items():
            plog = self.partitions.get(key)
            if plog is None:
                self.partitions[key] = self.logs.create(key[0], key[1], cfg)
            elif plog.config != cfg:
                plog.update_config(cfg)

    def partition(self, topic: str, index: int) -> PartitionLog | None:
        return self.partitions.get((topic, index))

    def leader_of(self, topic: str, index: int) -> tuple[int, int] | None:
        """(leader id, leader epoch) of a partition, or None if the partition is unknown."""
        assert self.coordinator is not None
        t = self.coordinator.topic(topic)
        if t is None or index < 0 or index >= len(t.partitions):
            return None
        p = t.partitions[index]
        return p.leader, p.leader_epoch

    def auto_create(self, name: str) -> bool:
        """Create a topic with the broker defaults; True if it exists afterwards."""
        assert self.coordinator is not None
        if self.coordinator.topic(name) is not None:
            return True
        try:
            self.coordinator.create_topic(name, -1, -1, {})
        except CoordinatorError as e:
            log.info("auto-create of topic %r refused: %s", name, e)
            return False
        emit_event("topic-created", {"topic": name, "by": "auto.create.topics.enable"})
        return True

    # ---- producer ids ----------------------------------------------------------------------
    def next_producer_id(self) -> int:
        assert self.coordinator is not None
        if self._pid_next >= self._pid_end:
            first = self.coordinator.allocate_producer_ids(PRODUCER_ID_BLOCK)
            self._pid_next, self._pid_end = first, first + PRODUCER_ID_BLOCK
        pid = self._pid_next
        self._pid_next += 1
        return pid

    # ---- housekeeping ----------------------------------------------------------------------
    def apply_retention(self) -> int:
        freed = 0
        now_ms = int(self.clock() * 1000)
        for plog in self.partitions.values():
            freed += plog.apply_retention(now_ms)
        return freed

    def checkpoint(self) -> None:
        """fsync what is dirty, then write the recovery checkpoint, so a crash only rescans
        what arrived since (Kafka's recovery-point checkpoint, every 60 s by default)."""
        for plog in self.partitions.values():
            if plog.dirty:
                plog.flush()
        self.logs.checkpoint()
