"""Topic changes in the metadata (a part of MetadataMachine): creating topics and partitions with
Kafka's checks and placement, deleting topics, altering a topic's configs (an unclean election
where it is newly allowed)."""

from __future__ import annotations

import uuid
from typing import Any, Iterable, Mapping, Sequence

from sandbox.protocol.errors import (INVALID_PARTITIONS, INVALID_REPLICA_ASSIGNMENT, INVALID_REQUEST,
                                     INVALID_TOPIC_EXCEPTION, TOPIC_ALREADY_EXISTS, UNKNOWN_TOPIC_ID,
                                     UNKNOWN_TOPIC_OR_PARTITION)

from . import broker_configs, rules, topic_configs
from .elections import Draft
from .model import CoordinatorError, TopicInfo

UNCLEAN = "unclean.leader.election.enable"
Record = dict[str, Any]


class TopicChanges:
    """Mixed into MetadataMachine: uses its topics, ids, brokers and defaults."""

    def create_topic(self, name: str, num_partitions: int, replication_factor: int,
                     configs: Mapping[str, str] | None, topic_id: uuid.UUID,
                     assignments: Any = None, first_epoch: int = 0) -> list[Record]:
        rules.validate_topic_name(name)
        if name in self._topics:
            raise CoordinatorError(TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
        other = rules.case_collision(name, self._topics)
        if other is not None:
            raise CoordinatorError(INVALID_TOPIC_EXCEPTION, f"Topic '{name}' differs only in case "
                                   f"from existing topic '{other}', and both would share one "
                                   "folder on Windows and macOS.")
        collide = name.replace(".", "_")
        for other in self._topics:
            if other.replace(".", "_") == collide:
                raise CoordinatorError(INVALID_TOPIC_EXCEPTION, f"Topic '{name}' collides with "
                                       f"existing topic '{other}' ('.' and '_' collide)")
        if topic_id in self._ids:
            raise CoordinatorError(INVALID_REQUEST, f"topic id {topic_id} is already in use")
        if topic_id in self._deleted:   # a restore from an older catalog, or a broker's folder
            raise CoordinatorError(UNKNOWN_TOPIC_ID, f"Topic id {topic_id} was deleted; it is not made again.")
        if assignments is not None:
            if num_partitions != -1 or replication_factor != -1:
                raise CoordinatorError(INVALID_REQUEST, "Both numPartitions or "
                                       "replicationFactor and replicasAssignments were set.")
            replica_lists = rules.check_assignments(assignments, 0, None, set(self._brokers))
        else:
            if num_partitions == -1:
                num_partitions = self.default_partitions
            if num_partitions < 1:
                raise CoordinatorError(INVALID_PARTITIONS,
                                       "Number of partitions must be larger than 0.")
            if replication_factor == -1:
                replication_factor = self.default_replication_factor
            replica_lists = self._place(num_partitions, replication_factor, first_index=0) \
                if num_partitions <= rules.MAX_TOPIC_PARTITIONS else []
        rules.check_partition_count(max(len(replica_lists), num_partitions))
        cfg = topic_configs.validate(configs)
        topic_configs.check_combination(cfg, broker_configs.cluster_topic_defaults(self._broker_configs))
        cfg.update(topic_configs.default_min_insync(self.min_insync_replicas, cfg, replica_lists))
        tid = str(topic_id)
        records: list[Record] = [{"type": "topic", "name": name, "topic_id": tid, "configs": cfg}]
        for index, replicas in enumerate(replica_lists):
            records.append(self._new_partition(tid, index, replicas, first_epoch))
        return records

    def delete_topic(self, name: str | uuid.UUID) -> list[Record]:
        topic = self._require_topic(name)
        return [{"type": "remove-topic", "topic_id": str(topic.topic_id)}]

    def create_partitions(self, name: str, new_total: int, assignments: Any = None
                          ) -> list[Record]:
        topic = self._require_topic(name)
        current = len(topic.partitions)
        if new_total < current:
            raise CoordinatorError(INVALID_PARTITIONS, f"Topic currently has {current} "
                                   f"partitions, which is higher than the requested {new_total}.")
        if new_total == current:
            raise CoordinatorError(INVALID_PARTITIONS,
                                   f"Topic already has {current} partitions.")
        rules.check_partition_count(new_total)
        rf = topic.replication_factor
        if assignments is not None:
            replica_lists = rules.check_assignments(assignments, current, new_total - current, set(self._brokers))
            if replica_lists and len(replica_lists[0]) != rf:
                raise CoordinatorError(INVALID_REPLICA_ASSIGNMENT, "Inconsistent replication "
                                       f"factor between partitions: the topic has {rf}.")
        else:
            replica_lists = self._place(new_total - current, rf, first_index=current)
        tid = str(topic.topic_id)
        return [self._new_partition(tid, current + i, replicas)
                for i, replicas in enumerate(replica_lists)]

    def alter_configs(self, name: str, set: Mapping[str, str] | None = None,  # noqa: A002
                      delete: Iterable[str] | None = None, incremental: bool = True
                      ) -> list[Record]:
        """incremental: apply `set` then remove `delete` keys (back to defaults).
        Not incremental: the topic's configs become exactly `set`."""
        topic = self._require_topic(name)
        new_values = topic_configs.validate(set)
        # a deleted key the topic does not set changes nothing (a name Kafka does not know too):
        # Kafka's controller checks only the configs the change leaves
        delete = [str(k) for k in (delete or ())]
        configs = topic_configs.merged(topic.configs, new_values, delete, incremental)
        topic_configs.check_combination(configs, broker_configs.cluster_topic_defaults(self._broker_configs))
        draft = Draft(self)
        draft.emit({"type": "config", "topic_id": str(topic.topic_id), "configs": dict(sorted(configs.items()))})
        if configs.get(UNCLEAN) == "true" and topic.configs.get(UNCLEAN) != "true":
            draft.elect_unclean(topic.name)
        return draft.records

    # ----------------------------------------------------------------- helpers
    def _require_topic(self, name: str | uuid.UUID) -> TopicInfo:
        if isinstance(name, uuid.UUID):
            found = self._ids.get(name)
            if found is None:
                raise CoordinatorError(UNKNOWN_TOPIC_ID, f"Topic id {name} does not exist.")
            return self._topics[found]
        topic = self._topics.get(name)
        if topic is None:
            raise CoordinatorError(UNKNOWN_TOPIC_OR_PARTITION, f"Topic '{name}' does not exist.")
        return topic

    def _new_partition(self, tid: str, index: int, replicas: Sequence[int], first_epoch: int = 0) -> Record:
        """A new partition's record. Its ISR is the replicas that are registered and not fenced,
        its leader the first of them, as Kafka's controller places a new partition: a broker that
        is down now rejoins once it has fetched what the leader holds (counted in sync at once it
        could be elected with an empty or older log and cut the others' records). A partition
        whose replicas are all down is refused, as Kafka refuses it (it could never be led).
        A partition put back after the coordinator's journal was lost (`first_epoch` > 0: its
        replicas hold data) starts with its leader alone in the ISR: the restore puts the replica
        with the newest history first, and nobody knows how far the others got, so each rejoins
        once it has fetched up to the high watermark (in sync from the start, one with a shorter
        log could be elected when the leader dies and cut records the leader had acknowledged)."""
        isr = [r for r in replicas if r in self._brokers and not self._brokers[r].fenced]
        if not isr:
            raise CoordinatorError(INVALID_REPLICA_ASSIGNMENT, "All brokers specified in the manual "
                                   f"partition assignment for partition {index} are fenced or in "
                                   "controlled shutdown.")
        if first_epoch > 0:
            isr = isr[:1]
        return {"type": "partition", "topic_id": tid, "index": index, "replicas": list(replicas),
                "isr": isr, "leader": isr[0], "leader_epoch": first_epoch, "partition_epoch": 0}

    def _place(self, count: int, replication_factor: int, first_index: int) -> list[list[int]]:
        start = sum(len(t.partitions) for t in self._topics.values())
        return rules.place_replicas(self.unfenced_brokers(), count, replication_factor,
                                    first_index, start)
