"""What one broker owns: its partition logs, the embedded coordinator, groups, producer ids.

One asyncio loop owns all of it, so there are no locks. Handlers reach everything through here.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable, TypeVar

from sandbox import lifecycle
from sandbox.coordinator import CoordinatorError
from sandbox.coordinator.api import CoordinatorAPI
from sandbox.coordinator.changes import MetadataChange, ReplicasRemoved, TopicRemoved
from sandbox.coordinator.client import LocalCoordinator, RemoteCoordinator
from sandbox.coordinator.model import offline_dir_id
from sandbox.log import LogConfig, LogDir, PartitionLog
from sandbox.log.compactor import Compactor
from sandbox.protocol.errors import (
    FENCED_LEADER_EPOCH, INVALID_TOPIC_EXCEPTION, LEADER_NOT_AVAILABLE, NONE, UNKNOWN_LEADER_EPOCH,
)

from .access import Access, report_denied
from .checkpoints import Checkpointer
from .config import BrokerConfig
from .disk_folders import HISTORY_FILE, RESTORE_GRACE_S, DiskFolders  # noqa: F401 (HISTORY_FILE: tests)
from .durability import SYNC_IN_THREAD, Durability  # noqa: F401 (SYNC_IN_THREAD: tests)
from .log_housekeeping import LogHousekeeping
from .refused_folders import RefusedFolders
from .groups import GroupCoordinator
from .group_ownership import GroupOwnership
from .log_defaults import LogDefaults
from .offsets_topic import TopicOffsetStore
from .replication import ReplicaManager
from .transactions import TxnCoordinator

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


# how long a Metadata or FindCoordinator request waits for a topic it has the coordinator create
# (a few ms when the coordinator is well); past it the client is told to ask again and the creation
# goes on by itself. Kafka's brokers wait not at all; a request waiting the coordinator's whole
# 5 s timeout (it is paused, or cut off) held every later request on that client's connection,
# its produce requests to topics that exist too.
CREATE_WAIT_S = 0.25
T = TypeVar("T")


def emit_event(kind: str, detail: dict[str, Any]) -> None:
    """The broker's EVENT lines (see sandbox.lifecycle)."""
    lifecycle.emit_event(log, kind, detail)


class BrokerState(DiskFolders, Durability, LogHousekeeping, RefusedFolders, GroupOwnership):
    def __init__(self, config: BrokerConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.node_id = config.node_id
        self.stopped_unflushed: list[str] = []   # what close() could not flush (a full disk)
        self.not_created: dict[tuple[str, int], str] = {}   # partitions whose folder could not be made, why
        self.doomed: set[tuple[str, int]] = set()   # deleted partitions whose folder could not go yet
        self._cannot_open: set[tuple[str, int]] = set()   # logs whose first open a held file refused
        self.stray_held: dict[tuple[str, int], str] = {}   # stray folders not set aside yet (held files)
        self.storage_failing = False   # the last write hit a full or failing disk (KAFKA_STORAGE_ERROR)
        self.storage_failures = 0      # writes that failed so far, and the last one (storage.py)
        self.storage_failure: dict | None = None
        self.storage_told: bool | None = False   # what the log says of it (None: unknown; storage.py)
        self._restore_checked: float | None = None   # the cluster change whose orphans are scheduled
        self._closing = False
        data = Path(config.data_dir)   # created by open(), once the listeners are bound
        self.logs = LogDir(data, config.log, clock=clock, on_event=emit_event, background_removal=True)
        self._checkpoints = Checkpointer(self.logs)   # the once-a-second checkpoint files
        self.log_defaults = LogDefaults(config.log, config.node_id)
        self._roll_syncs: dict[PartitionLog, asyncio.Task] = {}   # the newest per log
        self._creating: dict[str, asyncio.Task] = {}   # topic -> its creation in flight (create_soon)
        # (topic, partition, producer id, epoch, first sequence) -> when Produce refused that
        # idempotent batch before appending it, oldest first (handlers/k00_produce._refused_here)
        self.produce_refused: dict[tuple[str, int, int, int, int], float] = {}
        # the coordinator's metadata is the history this broker followed when it last ran (so a
        # partition on disk that it does not know was deleted meanwhile, not lost): see _check_history
        self._history_intact = False
        self._noted_history: str | None = None   # the history HISTORY_FILE names (once read or written)
        self._pending: frozenset = frozenset()   # folders it lists as not put back yet (see DiskFolders)
        self.known_brokers: dict[int, Any] = {}   # broker id -> its registration (brokers_to_list)
        if SYNC_IN_THREAD:
            self.logs.roll_sync = self._sync_rolled
        self.partitions: dict[tuple[str, int], PartitionLog] = {}
        # (topic, partition) -> (leader id, leader epoch), rebuilt on every metadata change
        self.leaders: dict[tuple[str, int], tuple[int, int]] = {}
        self.coordinator: CoordinatorAPI | None = None
        self.groups: GroupCoordinator | None = None
        self.offsets: TopicOffsetStore | None = None
        self.txns: TxnCoordinator | None = None
        self.notifier = Notifier()
        self.access = Access(config, report_denied)   # the authorizer (ACLs)
        self.replicas = ReplicaManager(self, clock=clock, emit=emit_event,
                                       replica_lag_ms=config.replica_lag_time_max_ms,
                                       default_min_isr=config.min_insync_replicas)
        self._compactors: dict[tuple[str, int], Compactor] = {}   # compaction state of each log
        self._pid_next = 0
        self._pid_end = 0
        self.started_at = time.monotonic()

    # ---- lifecycle -------------------------------------------------------------------------
    async def open(self) -> None:
        """Recover the journal, join the coordinator (remote, or embedded in combined mode),
        restore topics the metadata lost, open groups and offsets."""
        data = Path(self.config.data_dir)
        log.info("%s %s", lifecycle.JOURNAL_OPENING, data)
        self.partitions = dict(self.logs.open())
        self.doomed |= self.logs.refused_deletions   # deleted before a restart, a file still held
        coord: CoordinatorAPI
        if self.config.coordinator:
            coord = RemoteCoordinator(self.config.coordinator,
                                      session_timeout=self.config.broker_session_timeout_ms / 1000)
        else:
            coord = LocalCoordinator(data / METADATA_DIR, default_partitions=self.config.num_partitions,
                                     on_event=emit_event)
        if isinstance(coord, RemoteCoordinator):   # told with every heartbeat (KIP-858)
            coord.session.offline_dirs = self.offline_dirs
        self.coordinator = coord
        host, port = self.config.advertised  # the primary (first) listener's
        listeners = [(lst.name, *lst.advertised) for lst in self.config.endpoints()]
        self.broker_epoch = await coord.start(self.node_id, host, port, None, listeners=listeners)
        self._check_history()
        if self.config.coordinator:
            # several brokers share this coordinator: one that claimed every partition it finds on
            # disk now could take a partition whose journal is on another broker. The supervisor
            # re-creates topics where their journals are; what nobody claims is adopted later.
            asyncio.get_running_loop().call_later(
                RESTORE_GRACE_S, lambda: asyncio.get_running_loop().create_task(self._adopt_orphans()))
        else:
            await self._adopt_orphans()
        self.offsets = TopicOffsetStore(
            self, partitions=self.config.offsets_topic_num_partitions, fsync=self.config.offsets_fsync,
            replication_factor=self.config.offsets_topic_replication_factor, legacy_dir=data / OFFSETS_DIR,
            clock=self.clock, on_event=emit_event)
        self.groups = GroupCoordinator(
            self.offsets, initial_rebalance_delay_ms=self.config.group_initial_rebalance_delay_ms,
            min_session_timeout_ms=self.config.group_min_session_timeout_ms,
            max_session_timeout_ms=self.config.group_max_session_timeout_ms,
            consumer_heartbeat_interval_ms=self.config.group_consumer_heartbeat_interval_ms,
            consumer_session_timeout_ms=self.config.group_consumer_session_timeout_ms,
            migration_policy=self.config.group_consumer_migration_policy, wall=self.clock,
            max_size=self.config.group_max_size, consumer_max_size=self.config.group_consumer_max_size,
            lapsed=self.group_lease_lapsed,
        )
        cfg = self.config
        self.txns = TxnCoordinator(
            self, clock=self.clock, max_timeout_ms=cfg.transaction_max_timeout_ms,
            expiration_ms=cfg.transactional_id_expiration_ms, partitions=cfg.transaction_state_log_num_partitions,
            replication_factor=cfg.transaction_state_log_replication_factor, fsync=cfg.offsets_fsync,
            write_timeout_ms=cfg.offsets_commit_timeout_ms, on_event=emit_event)
        coord.watch(self.sync_partitions)
        self.sync_partitions([])
        if self.offsets.has_legacy():   # the journal of an earlier version moves into the topic
            if self.config.coordinator:   # once the other brokers registered (the topic's replicas)
                loop = asyncio.get_running_loop()
                loop.call_later(RESTORE_GRACE_S, lambda: None if self._closing else loop.create_task(
                    self.offsets.ensure_topic()))
            else:
                await self.offsets.ensure_topic()

    async def shut_down(self) -> None:
        """Before the listeners close: hand the leaderships over (Kafka's controlled shutdown).
        A broker with the coordinator in its own process has no one to hand them to."""
        shut_down = getattr(self.coordinator, "shut_down", None)
        if shut_down is None or self._closing:
            return
        t0 = time.monotonic()
        if await shut_down():
            log.info("controlled shutdown: leaderships handed over in %.0f ms", (time.monotonic() - t0) * 1000)

    async def close(self) -> None:
        self._closing = True
        pending = list(self._roll_syncs.values())   # the logs' own close flushes all of it
        await lifecycle.cancel_and_wait(pending + list(self._creating.values()))
        await self._checkpoints.wait()
        self.replicas.close()
        if self.groups is not None:
            self.groups.shutdown()
        if self.offsets is not None:
            self.offsets.close()
        if self.txns is not None:
            self.txns.close()
        unflushed = self.logs.close()
        if unflushed:   # the next start rescans what the last flush did not cover
            self.stopped_unflushed = unflushed
            log.warning("could not flush %d partition(s) while stopping (%s); the next start recovers "
                        "them from their logs", len(unflushed), "; ".join(unflushed[:3]))
        if self.coordinator is not None:
            await self.coordinator.stop()

    # ---- partitions ------------------------------------------------------------------------
    def sync_partitions(self, changes: list[MetadataChange]) -> None:
        """Make the local logs match the metadata: create missing, re-config, and delete only
        topics whose deletion the metadata announced and partitions a reassignment moved off this
        broker (a wiped coordinator must not wipe us)."""
        assert self.coordinator is not None
        wanted: dict[tuple[str, int], LogConfig] = {}
        leaders: dict[tuple[str, int], tuple[int, int]] = {}
        removed = {c.name for c in changes if isinstance(c, TopicRemoved)}
        moved_away = {(c.name, c.index) for c in changes
                      if isinstance(c, ReplicasRemoved) and self.node_id in c.brokers}
        topics = self.coordinator.topics()
        topic_ids: dict[str, uuid.UUID] = {}
        base = self.log_defaults.base(self.coordinator)   # [broker] settings, then dynamic ones
        for t in topics:
            try:
                cfg = self.log_defaults.log_config(dict(t.configs), base)
            except ValueError as e:
                # a value the coordinator took that this log cannot (a bug on either side): that
                # topic's logs keep the broker's defaults, said once per change; one topic must
                # not stop every other topic's partitions from being made or followed
                log.error("topic %s: %s; its logs use the broker's defaults", t.name, e)
                cfg = base
            topic_ids[t.name] = t.topic_id
            for p in t.partitions:
                leaders[(t.name, p.index)] = (p.leader, p.leader_epoch)
                if self.node_id in p.replicas:
                    wanted[(t.name, p.index)] = cfg
        self.leaders = leaders
        self._remember_brokers()
        deleted = False
        for key in list(self.partitions):
            if (key[0] in removed or key in moved_away) and key not in wanted:
                self.partitions.pop(key)
                # the checkpoint files once for all of them, not three fsynced writes per
                # partition (a 100-partition topic's deletion held the event loop 0.6-1 s)
                self._delete_folder(key, checkpoint=False)
                self.notifier.notify(key)
                deleted = True
        if deleted:
            self._checkpoint_after_deletion()
        not_created: dict[tuple[str, int], str] = {}
        for key, cfg in wanted.items():
            if not self._match_folder(key, topic_ids[key[0]], key[0] in removed, leaders[key][0]):
                continue   # decided at a later metadata change
            plog = self.partitions.get(key)
            if plog is None:
                self._make_partition(key, cfg, topic_ids[key[0]], not_created)
                continue
            if plog.config != cfg:
                plog.config = cfg
            if plog.topic_id != topic_ids[key[0]]:
                self.logs.record_topic_id(key[0], key[1], topic_ids[key[0]])
        self.not_created = not_created
        if self._noted_history != self.coordinator.cluster_id or self._pending:
            self._note_history_if_matched(topic_ids)
        self._partitions_known(topics)
        # a deleted topic's committed offsets are removed by the coordinators the roles just set:
        # before them, a broker whose `__consumer_offsets` partition moved away in this same update
        # wrote the tombstones as a follower stamped with the new leader's epoch, and the new
        # leader, not loaded yet, wrote none and loaded the offsets afterwards
        for name in removed:
            if self.groups is not None:
                self.groups.delete_offsets_for_topic(name)
        self._after_cluster_change()

    def _remember_brokers(self) -> None:
        """Keep the brokers the metadata lists (see brokers_to_list); while the coordinator's
        journal is being restored, brokers it does not know yet are kept, not forgotten."""
        now = {b.broker_id: b for b in self.coordinator.brokers() if not getattr(b, "fenced", False)}
        self.known_brokers = {**self.known_brokers, **now} if self.restoring() else now

    def brokers_to_list(self) -> list:
        """The brokers Metadata lists: the registered ones, and while the coordinator's journal
        is being restored (they register again one by one) also the ones registered before. A
        broker missing from one Metadata answer is dropped by librdkafka (2.10 and later), and a
        client left with none stalled for good ("no broker available for coordinator query")."""
        current = list(self.coordinator.brokers())
        if not self.restoring():
            return current
        have = {b.broker_id for b in current}
        return current + [b for bid, b in sorted(self.known_brokers.items()) if bid not in have]

    def _after_cluster_change(self) -> None:
        """Once the restore grace after a replaced coordinator journal is over, partitions on disk
        that the metadata still does not know are put back (no supervisor restored them)."""
        changed = self.coordinator.cluster_changed_at
        if changed is None or changed == self._restore_checked:
            return
        self._restore_checked = changed
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        loop.call_later(RESTORE_GRACE_S, lambda: loop.create_task(self._adopt_orphans()))

    def leader_epoch_error(self, topic: str, index: int, asked: int | None) -> int:
        """A client's current_leader_epoch (KIP-320) against the partition's: older is
        FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH (this broker has not seen it yet), -1 or
        None unchecked (Fetch and OffsetForLeaderEpoch answer so, as Kafka's do)."""
        if asked is None or asked < 0:
            return NONE
        current = self.leaders.get((topic, index), (-1, -1))[1]
        if asked < current:
            return FENCED_LEADER_EPOCH
        return UNKNOWN_LEADER_EPOCH if asked > current else NONE

    def partition(self, topic: str, index: int) -> PartitionLog | None:
        return self.partitions.get((topic, index))

    def leader_of(self, topic: str, index: int) -> tuple[int, int] | None:
        """(leader id, leader epoch) of a partition, or None if the partition is unknown."""
        return self.leaders.get((topic, index))

    def led_log(self, topic: str, index: int) -> tuple[PartitionLog | None, int]:
        """The local log of a partition this broker leads, else (None, error code)."""
        leader = self.leaders.get((topic, index))
        if leader is None:
            return None, 3  # UNKNOWN_TOPIC_OR_PARTITION
        plog = self.partitions.get((topic, index))
        if leader[0] != self.node_id or plog is None:
            return None, 6  # NOT_LEADER_OR_FOLLOWER: the client refreshes metadata
        if (topic, index) in self.replicas.unopened:   # not led here until it opens (retry_unopened)
            return None, 56  # KAFKA_STORAGE_ERROR: clients retry
        if not plog.opened and plog.__dict__.get("hw_follows_leo") is not True \
                and (topic, index) not in self.replicas.leading:
            # replicated, and its leading not taken up (the replication roles open it first):
            # opened here, its writes would be acknowledged without a follower
            return None, 56
        return self.opened_log(topic, index)

    def retry_unopened(self) -> None:
        """Each second (server.py): logs a held file kept from opening (Windows) are tried again;
        the replication roles are taken up again once one opens, and the internal topics load what
        they could not."""
        opened = False
        for key in list(self.replicas.unopened):
            plog = self.partitions.get(key)
            if plog is None or plog.opened:   # gone, or opened since: the roles pass below settles it
                self.replicas.unopened.discard(key)
                opened = opened or plog is not None
                continue
            try:
                plog.open_now()
            except PermissionError:
                continue
            opened = True
        if opened and self.coordinator is not None:
            self._partitions_known(self.coordinator.topics())   # roles, then offsets and transactions
            return
        if self.offsets is not None and self.offsets.refused:
            self.offsets.on_metadata()
        if self.txns is not None and self.txns.store.refused:
            self.txns.on_metadata()

    def offline_dirs(self) -> list[uuid.UUID]:
        """The partitions whose log cannot be opened here now (a file of it held by another
        program: replicas it would lead or follow, and logs led alone a request found so), as the
        ids the heartbeat reports them by (KIP-858's OfflineLogDirs, one per partition folder): the
        coordinator moves their leadership and ISR membership elsewhere until they open."""
        keys = set(self.replicas.unopened)
        keys |= {k for k in self._cannot_open if (plog := self.partitions.get(k)) is not None and not plog.opened}
        out = []
        for name, index in sorted(keys):
            topic = self.coordinator.topic(name) if self.coordinator is not None else None
            if topic is not None:
                out.append(offline_dir_id(topic.topic_id, index))
        return out

    def opened_log(self, topic: str, index: int) -> tuple[PartitionLog | None, int]:
        """This broker's replica of a partition, leader or not, opened; (None, error code) without
        one, or while a file of it is held by another program (KAFKA_STORAGE_ERROR)."""
        plog = self.partitions.get((topic, index))
        if plog is None:
            return None, 3  # UNKNOWN_TOPIC_OR_PARTITION
        if not plog.opened:   # opened at its first use (LogDir.open)
            try:
                plog.open_now()
            except PermissionError as e:   # Windows: a file of it another program holds; asked again
                if (topic, index) not in self._cannot_open:   # one line, not one a request
                    self._cannot_open.add((topic, index))
                    log.warning("%s-%d: its log cannot be opened yet (%s); answered KAFKA_STORAGE_ERROR "
                                "(clients retry) until that program lets go", topic, index, e)
                return None, 56  # KAFKA_STORAGE_ERROR
            self._cannot_open.discard((topic, index))
        return plog, 0

    def restoring(self) -> bool:
        """The coordinator's journal was just replaced: the supervisor is putting topics back."""
        changed = self.coordinator.cluster_changed_at
        return changed is not None and time.monotonic() - changed < RESTORE_GRACE_S

    async def create_soon(self, name: str, create: Callable[[], Awaitable[T]], late: T) -> T:
        """Run `create()` (one at a time per topic: a request for a topic already being made joins
        that creation) and answer its result if it is done within CREATE_WAIT_S, else `late`; the
        creation then finishes by itself and the client's next request finds the topic."""
        task = self._creating.get(name)
        if task is None:
            task = asyncio.get_running_loop().create_task(create())
            self._creating[name] = task
            task.add_done_callback(lambda t: self._creating.pop(name, None) if self._creating.get(name) is t else None)
        done, _ = await asyncio.wait({task}, timeout=CREATE_WAIT_S)
        if not done:
            return late
        return task.result()

    async def auto_create(self, name: str) -> int:
        """Create a topic with the broker defaults, answering as Kafka's auto-creation does:
        NONE once it exists; INVALID_TOPIC_EXCEPTION for a name no topic can have (the client
        gives up); LEADER_NOT_AVAILABLE for anything else (too few brokers registered for the
        default replication factor, the coordinator out of reach or slow to answer, another
        broker creating it right now): the client asks again until its own timeout, as against
        Kafka, and the topic appears once the cluster can hold it."""
        assert self.coordinator is not None
        if self.coordinator.topic(name) is not None:
            return NONE
        if self.restoring():
            # the coordinator's journal was just replaced: the supervisor is putting every topic
            # back where its journals are; a default-sized topic made now would take its place
            log.info("auto-create of topic %r deferred: the metadata is being restored", name)
            return LEADER_NOT_AVAILABLE
        return await self.create_soon(name, lambda: self._auto_create(name), LEADER_NOT_AVAILABLE)

    async def _auto_create(self, name: str) -> int:
        assert self.coordinator is not None
        try:
            await self.coordinator.create_topic(name, -1, -1, {})
        except CoordinatorError as e:
            if e.error_code == INVALID_TOPIC_EXCEPTION:
                log.info("auto-create of topic %r refused: %s", name, e)
                return INVALID_TOPIC_EXCEPTION
            if self.coordinator.topic(name) is not None:
                return NONE   # made meanwhile by another broker's auto-creation
            log.info("auto-create of topic %r not possible yet (the client will ask again): %s", name, e)
            return LEADER_NOT_AVAILABLE
        emit_event("topic-created", {"topic": name, "by": "auto.create.topics.enable"})
        return NONE

    # ---- producer ids ----------------------------------------------------------------------
    async def next_producer_id(self) -> int:
        assert self.coordinator is not None
        if self._pid_next >= self._pid_end:
            first = await self.coordinator.allocate_producer_ids(PRODUCER_ID_BLOCK)
            self._pid_next, self._pid_end = first, first + PRODUCER_ID_BLOCK
        pid = self._pid_next
        self._pid_next += 1
        return pid
