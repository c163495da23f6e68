"""Coordinator: the call-shaped control-plane API. Owns one MetadataMachine and its
MetadataJournal; every change is validated, journaled (fsync), applied, then announced.
"""
from __future__ import annotations

import base64
import logging
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from . import acls, elections, isr, reassign, topic_configs
from .api import ViewReads
from .journal import EventSink, JournalCorruptError, MetadataJournal
from .listeners import Listeners
from .machine import MetadataMachine, Record
from sandbox.protocol.errors import INCONSISTENT_CLUSTER_ID, INVALID_REQUEST, KAFKA_STORAGE_ERROR, NONE
from .model import CoordinatorError, NewTopic, PartitionInfo, TopicInfo, TopicResult
from .rules import DUPLICATE_TOPIC_NAME, duplicated_names
from .scram import seed_records as scram_seed

Listener = Callable[[list[Record]], None]

log = logging.getLogger("sandbox.coordinator")
SNAPSHOT_RETRY_MS = 1000   # a snapshot that failed (a held file, a full disk) is tried again after this


def new_cluster_id() -> str:
    """A random id as Kafka prints it: base64url of a uuid4, unpadded (22 chars)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not text.startswith("-"):
            return text


# producer ids start at the wall clock's milliseconds x this (1.8e15 in 2026: inside a JavaScript
# number's exact range, as kafkajs keeps them); an older journal's ids are below any new floor
# unless it handed out more than one block of 1,000 per millisecond
PRODUCER_IDS_PER_MS = 1000

class Coordinator(ViewReads):
    def __init__(self, directory: Path, *, cluster_id: str | None = None,
                 clock: Callable[[], float] = time.time, session_timeout_ms: int = 9000,
                 default_partitions: int = 1, on_event: EventSink | None = None,
                 snapshot_every: int = 1000, default_replication_factor: int = 1,
                 min_insync_replicas: int = 1, stalled_after_ms: int | None = None,
                 seed_acls: Callable[[], Iterable[Any]] | None = None,
                 seed_cluster_id: Callable[[], Any] | None = None,
                 seed_scram: Callable[[], Any] | None = None) -> None:
        self._clock = clock
        self.session_timeout_ms = session_timeout_ms
        self.stalled_after_ms = stalled_after_ms   # see tick(); the server sets it, tests may not
        self._last_tick_ms: int | None = None
        self.stalls = 0   # ticks that found the coordinator had stood still (sessions restarted)
        self._listeners: list[Listener] = []
        self._snapshot_not_before_ms = 0   # a failed snapshot is not tried again before this
        self._machine = MetadataMachine(default_partitions=default_partitions,
                                        default_replication_factor=default_replication_factor,
                                        min_insync_replicas=min_insync_replicas)
        self._journal = MetadataJournal(Path(directory), on_event, snapshot_every=snapshot_every)
        try:
            self._load()
            self.seeded_acls = 0   # ACL bindings a fresh journal started with (seed_acls)
            self.seeded_users = 0  # SCRAM users it started with (seed_scram)
            if self._machine.cluster_id is None:
                # one batch (all or nothing on replay): a crash between the history and its seed
                # would leave a journal with a history, which is never seeded again
                records = self._machine.set_cluster_id(cluster_id or new_cluster_id())
                draft = self._machine.preview(records)
                if seed_acls is not None:   # asked only now: a journal with a history never reads it
                    records += self._seed(draft, self._seed_acls(draft, seed_acls()))
                    self.seeded_acls = sum(len(r["add"]) for r in records if r["type"] == "acl")
                if seed_cluster_id is not None:
                    records += self._seed(draft, self._seed_cluster_id(draft, seed_cluster_id()))
                if seed_scram is not None:
                    scram_records = self._seed(draft, scram_seed(seed_scram()))
                    records += scram_records
                    self.seeded_users = len({r["user"] for r in scram_records})
                self._commit(records)
            elif cluster_id is not None and cluster_id != self._machine.cluster_id:
                raise CoordinatorError(INCONSISTENT_CLUSTER_ID, f"The journal in {directory} "
                                       f"belongs to cluster {self._machine.cluster_id}, not "
                                       f"{cluster_id}.")
            self.tick()  # restored brokers' sessions start now
        except BaseException:
            self._journal.close()
            raise

    @staticmethod
    def _seed(draft: MetadataMachine, records: list[Record]) -> list[Record]:
        for record in records:
            draft.apply(record)
        return records

    @staticmethod
    def _seed_cluster_id(draft: MetadataMachine, cluster_id: Any) -> list[Record]:
        """A fresh journal answers clients with the cluster id they knew from its first moment
        (the supervisor's catalog kept it), not with a new one for the seconds until the restore
        puts it back: clients warn when a broker's cluster id changes ("a client must not be
        simultaneously connected to multiple clusters"), and twice in a few seconds. One that
        cannot be a cluster id is left out (the restore still tries it)."""
        if not cluster_id:
            return []
        try:
            return draft.restore_public_cluster_id(cluster_id)
        except CoordinatorError as e:
            log.warning("the seed's cluster id is left out: %s", e)
            return []

    @staticmethod
    def _seed_acls(draft: MetadataMachine, seed: Iterable[Any]) -> list[Record]:
        """A fresh journal's first ACL bindings (7-element lists, acls.Binding.to_json), before it
        serves anything: the supervisor passes its catalog's when a destroyed journal is replaced, so
        no broker sees a moment without them (allow.everyone.if.no.acl.found would open what they
        closed). One that cannot be a binding is left out, as CreateAcls would refuse it."""
        valid = []
        for item in seed:
            try:
                b = acls.Binding.from_json(item)
            except (TypeError, ValueError):
                continue
            if acls.creations({}, [b])[1][0][0] == NONE:
                valid.append(b)
        return draft.create_acls(valid)[0]

    def _load(self) -> None:
        state, records = self._journal.load()
        try:
            if state is not None:
                self._machine.restore(state)
            if self._machine.metadata_offset != self._journal.next_offset - len(records):
                raise ValueError("the snapshot offset does not match its state")
            for record in records:
                self._machine.apply(record)
        except (ValueError, KeyError, TypeError, IndexError) as e:
            raise JournalCorruptError(f"The coordinator journal in {self._journal.directory} "
                                      f"does not replay cleanly: {e!r}") from None

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _commit(self, records: list[Record]) -> list[Record]:
        if not records:
            return records
        try:
            self._journal.append(records)
        except OSError as e:   # full or failing disk: an error for this request, not a dropped connection
            raise CoordinatorError(KAFKA_STORAGE_ERROR, f"The coordinator's journal cannot be written "
                                                        f"({e.strerror or e}); free space on its disk.") from None
        for record in records:
            self._machine.apply(record)
        # committed: the brokers' feed hears of it before anything else can fail (a failed
        # snapshot used to skip this, leaving a hole in the feed that mirrors read wrongly)
        for listener in list(self._listeners):
            listener([dict(r) for r in records])
        if self._journal.snapshot_due and self._now_ms() >= self._snapshot_not_before_ms:
            try:
                # tried once, no waiting: the event loop serves every broker's heartbeat (Windows: a
                # snapshot another program holds made each change wait 3 s while it retried)
                self._snapshot(patient=False)
            except OSError as e:   # the records stay in the journal's log; tried again a second later
                self._snapshot_not_before_ms = self._now_ms() + SNAPSHOT_RETRY_MS
                log.warning("the coordinator's journal snapshot was not written (%s); its log keeps every "
                            "record and the snapshot is tried again", e.strerror or e)
        return records

    def _snapshot(self, *, patient: bool = True) -> None:
        self._journal.write_snapshot(self._machine.state().to_dict(),
                                     self._machine.metadata_offset, patient=patient)

    # ----------------------------------------------------------------- queries
    @property
    def _view(self) -> MetadataMachine:
        """What the reads (ViewReads: cluster id, offset, topics, brokers, configs...) answer from."""
        return self._machine

    def subscribe(self, callback: Listener) -> Callable[[], None]:
        """Call `callback(records)` after each applied change; returns an unsubscribe."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    # ----------------------------------------------------------------- topics
    def create_topic(self, name: str, num_partitions: int = -1, replication_factor: int = -1,
                     configs: Mapping[str, str] | None = None, assignments: Any = None, *,
                     validate_only: bool = False) -> TopicInfo:
        self.tick()
        configs, first_epoch = topic_configs.take_first_epoch(configs)
        configs, topic_id = topic_configs.take_topic_id(configs)
        records = self._machine.create_topic(name, num_partitions, replication_factor, configs,
                                             topic_id or uuid.uuid4(), assignments, first_epoch)
        if validate_only:
            return self._machine.preview(records).topic(name)  # type: ignore[return-value]
        self._commit(records)
        return self._machine.topic(name)  # type: ignore[return-value]

    def create_topics(self, topics: Iterable[NewTopic | Mapping[str, Any]],
                      validate_only: bool = False) -> list[TopicResult]:
        """Create several topics; each gets its own result (error_code 0 = created). A name given
        twice is created for neither and answered once, as Kafka's ControllerApis answers it."""
        requests = [t if isinstance(t, NewTopic) else NewTopic(**t) for t in topics]
        duplicated = duplicated_names(t.name for t in requests)
        results = []
        for req in requests:
            if req.name in duplicated:
                if all(r.name != req.name for r in results):
                    results.append(TopicResult(req.name, INVALID_REQUEST, DUPLICATE_TOPIC_NAME))
                continue
            try:
                info = self.create_topic(req.name, req.num_partitions, req.replication_factor,
                                         req.configs, req.assignments,
                                         validate_only=validate_only)
            except CoordinatorError as e:
                results.append(TopicResult(req.name, e.error_code, e.message))
            else:
                results.append(TopicResult(req.name, topic=info))
        return results

    def delete_topic(self, name: str | uuid.UUID) -> None:
        self._commit(self._machine.delete_topic(name))

    def create_partitions(self, name: str, total: int, assignments: Any = None,
                          validate_only: bool = False) -> TopicInfo:
        self.tick()
        records = self._machine.create_partitions(name, total, assignments)
        if validate_only:
            return self._machine.preview(records).topic(name)  # type: ignore[return-value]
        self._commit(records)
        return self._machine.topic(name)  # type: ignore[return-value]

    def alter_configs(self, name: str, set: Mapping[str, str] | None = None,  # noqa: A002
                      delete: Iterable[str] | None = None, incremental: bool = True,
                      validate_only: bool = False) -> None:
        records = self._machine.alter_configs(name, set, delete, incremental)
        if not validate_only:
            self._commit(records)

    def alter_group_configs(self, group: str, set: Mapping[str, str] | None = None,  # noqa: A002
                            delete: Iterable[str] | None = None, incremental: bool = True,
                            validate_only: bool = False) -> None:
        records = self._machine.alter_group_configs(group, set, delete, incremental)
        if not validate_only:
            self._commit(records)

    def alter_broker_configs(self, name: str, set: Mapping[str, str] | None = None,  # noqa: A002
                             delete: Iterable[str] | None = None, incremental: bool = True,
                             validate_only: bool = False) -> None:
        records = self._machine.alter_broker_configs(name, set, delete, incremental)
        if not validate_only:
            self._commit(records)

    def restore_cluster_id(self, cluster_id: str) -> None:
        self._commit(self._machine.restore_public_cluster_id(cluster_id))

    # ----------------------------------------------------------------- quotas and features
    def alter_client_quotas(self, entries: Any, validate_only: bool = False) -> list[tuple[int, str | None]]:
        records, results = self._machine.alter_client_quotas(entries)
        if not validate_only:
            self._commit(records)
        return results

    def alter_scram_credentials(self, deletions: Any, upsertions: Any) -> list[tuple[str, int, str | None]]:
        records, results = self._machine.alter_scram_credentials(deletions, upsertions)
        self._commit(records)
        return results

    def create_acls(self, bindings: Any) -> list[tuple[int, str | None]]:
        records, results = self._machine.create_acls(bindings)
        self._commit(records)
        return results

    def delete_acls(self, filters: Any) -> list[Any]:
        records, results = self._machine.delete_acls(filters)
        self._commit(records)
        return results

    def update_features(self, wanted: Any, validate_only: bool = False) -> dict[str, tuple[int, str | None]]:
        records, results = self._machine.update_features(wanted)
        if not validate_only:
            self._commit(records)
        return results

    # ----------------------------------------------------------------- brokers
    def register_broker(self, broker_id: int, host: str, port: int, rack: str | None = None,
                        incarnation_id: uuid.UUID | str | None = None, *,
                        listeners: Listeners | None = None) -> int:
        """Register a broker (unfenced at once); returns its broker epoch. `listeners`: every
        listener's advertised address as (name, host, port); host/port is the primary one."""
        self.tick()
        records = self._machine.register_broker(broker_id, host, port, rack,
                                                incarnation_id or uuid.uuid4(), self._now_ms(),
                                                listeners)
        self._commit(records)
        return self._machine.broker(broker_id).epoch  # type: ignore[union-attr]

    def heartbeat(self, broker_id: int, epoch: int, offline_dirs: Iterable[uuid.UUID] = ()) -> bool:
        """Keep a broker's session alive (unfencing it if it was fenced); returns fenced.
        `offline_dirs`: its heartbeat's OfflineLogDirs, one per partition whose log it cannot
        open (see MetadataMachine.broker_heartbeat)."""
        self.tick()
        self._commit(self._machine.broker_heartbeat(broker_id, epoch, self._now_ms(), offline_dirs))
        return self._machine.broker(broker_id).fenced  # type: ignore[union-attr]

    def unregister_broker(self, broker_id: int, epoch: int | None = None) -> None:
        """Controlled shutdown: fence the broker now instead of waiting for its session."""
        self._commit(self._machine.fence_broker(broker_id, epoch))

    def alter_partition(self, broker_id: int, topic_id: uuid.UUID, index: int, leader_epoch: int,
                        partition_epoch: int, new_isr: Sequence[int]) -> tuple[int, PartitionInfo | None]:
        """A leader's ISR change (AlterPartition): (error code, the partition afterwards)."""
        return self.alter_partitions(broker_id, [(topic_id, index, leader_epoch, partition_epoch, new_isr)])[0]

    def alter_partitions(self, broker_id: int,
                         changes: Sequence[tuple[uuid.UUID, int, int, int, Sequence[int]]]
                         ) -> list[tuple[int, PartitionInfo | None]]:
        """One AlterPartition request's ISR changes (topic id, partition, leader epoch, partition
        epoch, new ISR), each judged on the state the ones before it left, all written with one
        journal append (a broker rejoining hundreds of ISRs asks for them together)."""
        work = self._machine.preview(()) if len(changes) > 1 else self._machine
        records: list[Record] = []
        results = []
        for topic_id, index, leader_epoch, partition_epoch, new_isr in changes:
            made, code, after = isr.alter_partition(work, broker_id, topic_id, index, leader_epoch,
                                                    partition_epoch, new_isr)
            if work is not self._machine:
                for record in made:
                    work.apply(record)
            records += made
            results.append((code, after))
        self._commit(records)
        return results

    def elect_leaders(self, election_type: int, pairs: list[tuple[str, int]]
                      ) -> dict[tuple[str, int], tuple[int, str | None]]:
        """ElectLeaders (preferred or unclean): (error code, message) per partition."""
        records, results = elections.elect_leaders(self._machine, election_type, pairs)
        self._commit(records)
        return results

    def alter_reassignments(self, wanted: list[tuple[str, int, Sequence[int] | None]]
                            ) -> dict[tuple[str, int], tuple[int, str | None]]:
        """AlterPartitionReassignments (a target per partition; None cancels): (error code,
        message) per partition."""
        records, results = reassign.alter_reassignments(self._machine, wanted)
        self._commit(records)
        return results

    def rebalance_leaders(self) -> int:
        """auto.leader.rebalance.enable: partitions led elsewhere than by their preferred replica,
        while it is alive and in sync, go back to it; returns how many partitions moved."""
        pairs = elections.imbalanced(self._machine)
        if not pairs:
            return 0
        results = self.elect_leaders(elections.PREFERRED, pairs)
        return sum(1 for code, _m in results.values() if code == 0)

    def tick(self) -> list[int]:
        """Fence brokers whose session expired; returns their ids. With `stalled_after_ms` set
        (the server ticks every second and sets it to the session timeout): when the previous tick
        is longer ago than that, the coordinator itself stood still (a laptop that slept, a paused
        process, a clock that jumped), so the brokers' silence says nothing about them: their
        sessions start again instead of every broker being fenced at once (which took every
        partition offline and moved all leadership to whichever broker heartbeated first). A
        clock that went back restarts them too (else a broker that died would be fenced only
        once the clock caught up with its last heartbeat)."""
        now = self._now_ms()
        last, self._last_tick_ms = self._last_tick_ms, now
        stalled_after = self.stalled_after_ms
        if stalled_after is not None and last is not None and (now - last > stalled_after or now < last):
            self._machine.restart_sessions(now)
            self.stalls += 1
            # said here, not by the server's timer: a broker's heartbeat may be what wakes first
            log.warning("the coordinator did not run for longer than a session (%d ms: the machine "
                        "slept, or the process was paused): every broker's session starts again "
                        "rather than all of them being fenced", self.session_timeout_ms)
            return []
        records = self._commit(self._machine.fence_expired(now, self.session_timeout_ms))
        return [r["broker_id"] for r in records if r["type"] == "fence-broker"]

    def allocate_producer_ids(self, count: int = 1000) -> int:
        """Reserve `count` producer ids durably; returns the first. Never below the clock's
        milliseconds x PRODUCER_IDS_PER_MS: a journal destroyed and started afresh (the
        supervisor heals a broken one) must not hand out ids the brokers' logs still hold for
        other producers (their batches would be taken for out-of-order ones)."""
        records = self._machine.allocate_producer_ids(count, floor=self._now_ms() * PRODUCER_IDS_PER_MS)
        self._commit(records)
        return records[0]["next_producer_id"] - count

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        try:
            if self._journal.records_since_snapshot:
                self._snapshot()
        except OSError as e:   # a full disk at a stop: the log keeps every record; the journal still closes
            log.warning("the coordinator's journal snapshot was not written at its stop (%s); its log keeps "
                        "every record", e.strerror or e)
        finally:
            self._journal.close()

    def __enter__(self) -> Coordinator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

