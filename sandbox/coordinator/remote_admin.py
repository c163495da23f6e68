"""Topic writes over the wire (CreateTopics, DeleteTopics, CreatePartitions, AlterConfigs,
IncrementalAlterConfigs) and forwarded client requests: each returns once the metadata mirror
shows the change (bounded), and raises CoordinatorError when refused or when the coordinator is
away. Reads answer from the mirror."""
from __future__ import annotations

import uuid
from typing import Any, Iterable, Mapping

from sandbox.protocol import build, request_class
from sandbox.protocol.errors import UNKNOWN_TOPIC_ID

from .api import ViewReads
from .machine import MetadataMachine
from .mirror import MetadataMirror
from .model import NO_LEADER, CoordinatorError, NewTopic, PartitionInfo, TopicInfo, TopicResult
from .group_configs import RESOURCE_GROUP
from .topic_configs import RESOURCE_BROKER, RESOURCE_TOPIC
from sandbox.protocol.extensions import RESTORE_CLUSTER_ID
from .transport import CoordinatorConnection, assignment_list, check

V_CREATE, V_DELETE, V_PARTITIONS, V_ALTER, V_INCREMENTAL, V_ELECT, V_REASSIGN = 7, 5, 3, 2, 1, 2, 0
SET, DELETE = 0, 1          # IncrementalAlterConfigs operations
DEFAULT_CONFIG = 5          # CreateTopics config_source of a default value


class RemoteAdmin(ViewReads):
    """TopicAdmin over `control`; `mirror` answers the reads and shows writes once done."""

    def __init__(self, control: CoordinatorConnection, mirror: MetadataMirror, request_timeout: float) -> None:
        self._control = control
        self.mirror = mirror
        self.request_timeout = request_timeout

    @property
    def _view(self) -> MetadataMachine:
        return self.mirror.machine

    async def _request(self, body: Any) -> Any:
        return await self._control.request(body, self.request_timeout)

    async def forward(self, body: Any, catch_up: bool = False) -> Any:
        """A client's request the coordinator answers (as a Kafka broker forwards to its
        controller): its response entity, or CoordinatorError when the coordinator is away.
        catch_up: a write; return once the mirror shows it (bounded)."""
        response = await self._request(body)
        if catch_up:
            await self.mirror.catch_up()
        return response

    async def create_topic(self, name: str, num_partitions: int = -1,
                           replication_factor: int = -1, configs: Mapping[str, str] | None = None,
                           assignments: Any = None, *, validate_only: bool = False) -> TopicInfo:
        result = (await self._create([NewTopic(name, num_partitions, replication_factor, configs, assignments)],
                                     validate_only))[0]
        check(result.error_code, result.error_message, f"Creating topic {name!r}")
        return await self._created(result, validate_only)

    async def create_topics(self, topics: Iterable[NewTopic | Mapping[str, Any]],
                            validate_only: bool = False) -> list[TopicResult]:
        """One CreateTopics request; the coordinator refuses a name asked for more than once.
        Each topic gets its result, also when the coordinator cannot be reached."""
        requests = [t if isinstance(t, NewTopic) else NewTopic(**t) for t in topics]
        try:
            results = await self._create(requests, validate_only)
        except CoordinatorError as e:
            return [TopicResult(t.name, e.error_code, e.message) for t in requests]
        out = []
        for r in results:
            try:
                check(r.error_code, r.error_message, f"Creating topic {r.name!r}")
                out.append(TopicResult(r.name, topic=await self._created(r, validate_only)))
            except CoordinatorError as e:
                out.append(TopicResult(r.name, e.error_code, e.message))
        return out

    async def _create(self, topics: list[NewTopic], validate_only: bool) -> list[Any]:
        body = build(request_class(19, V_CREATE), {
            "topics": [{"name": t.name, "num_partitions": t.num_partitions,
                        "replication_factor": t.replication_factor,
                        "assignments": [{"partition_index": i, "broker_ids": b}
                                        for i, b in assignment_list(t.assignments or [])],
                        "configs": [{"name": k, "value": v} for k, v in (t.configs or {}).items()]}
                       for t in topics],
            "timeout": int(self.request_timeout * 1000), "validate_only": validate_only})
        return list((await self._request(body)).topics)

    async def _created(self, result: Any, validate_only: bool) -> TopicInfo:
        """The topic a CreateTopics result describes: from the mirror once it shows it, else
        (validate_only, or the mirror lags) as the result describes it."""
        if not validate_only:
            await self.mirror.catch_up()
            info = self.topic(result.name)
            if info is not None:
                return info
        rf = max(int(result.replication_factor), 0)
        parts = tuple(PartitionInfo(i, (NO_LEADER,) * rf, (NO_LEADER,) * rf)
                      for i in range(max(int(result.num_partitions), 0)))
        return TopicInfo(result.name, result.topic_id or uuid.UUID(int=0), parts,
                         {c.name: c.value for c in (result.configs or ())
                          if c.config_source != DEFAULT_CONFIG and c.value is not None})

    async def elect_leaders(self, election_type: int, pairs: list[tuple[str, int]]
                            ) -> dict[tuple[str, int], tuple[int, str | None]]:
        by_topic: dict[str, list[int]] = {}
        for topic, index in pairs:
            by_topic.setdefault(topic, []).append(index)
        body = build(request_class(43, V_ELECT), {
            "election_type": election_type, "timeout": int(self.request_timeout * 1000),
            "topic_partitions": [{"topic": t, "partitions": ps} for t, ps in by_topic.items()]})
        resp = await self._request(body)
        check(resp.error_code, None, "Electing leaders")
        await self.mirror.catch_up()
        return {(r.topic, int(p.partition_id)): (int(p.error_code), p.error_message)
                for r in resp.replica_election_results for p in r.partition_result}

    async def alter_reassignments(self, wanted: list[tuple[str, int, Any]]
                                  ) -> dict[tuple[str, int], tuple[int, str | None]]:
        by_topic: dict[str, list[dict]] = {}
        for topic, index, replicas in wanted:
            by_topic.setdefault(topic, []).append(
                {"partition_index": index, "replicas": None if replicas is None else list(replicas)})
        body = build(request_class(45, V_REASSIGN), {
            "timeout": int(self.request_timeout * 1000),
            "topics": [{"name": t, "partitions": ps} for t, ps in by_topic.items()]})
        resp = await self._request(body)
        check(resp.error_code, resp.error_message, "Reassigning partitions")
        await self.mirror.catch_up()
        return {(t.name, int(p.partition_index)): (int(p.error_code), p.error_message)
                for t in resp.responses for p in t.partitions}

    async def delete_topic(self, name: str | uuid.UUID) -> None:
        if isinstance(name, uuid.UUID):
            info = self.topic_by_id(name)
            if info is None:
                raise CoordinatorError(UNKNOWN_TOPIC_ID, f"Topic id {name} does not exist.")
            name = info.name
        body = build(request_class(20, V_DELETE), {
            "topic_names": [name], "timeout": int(self.request_timeout * 1000)})
        result = (await self._request(body)).responses[0]
        check(result.error_code, result.error_message, f"Deleting topic {name!r}")
        await self.mirror.catch_up()

    async def create_partitions(self, name: str, total: int, assignments: Any = None,
                                validate_only: bool = False) -> TopicInfo | None:
        assign = None
        if assignments is not None:
            assign = [{"broker_ids": b} for _i, b in sorted(assignment_list(assignments))]
        body = build(request_class(37, V_PARTITIONS), {
            "topics": [{"name": name, "count": total, "assignments": assign}],
            "timeout": int(self.request_timeout * 1000), "validate_only": validate_only})
        result = (await self._request(body)).results[0]
        check(result.error_code, result.error_message, f"Adding partitions to {name!r}")
        if not validate_only:
            await self.mirror.catch_up()
        return self.topic(name)

    async def alter_configs(self, name: str, set: Mapping[str, str] | None = None,  # noqa: A002
                            delete: Iterable[str] | None = None, incremental: bool = True,
                            validate_only: bool = False) -> None:
        await self._alter(RESOURCE_TOPIC, name, set, delete, incremental, validate_only)

    async def alter_group_configs(self, group: str, set: Mapping[str, str] | None = None,  # noqa: A002
                                  delete: Iterable[str] | None = None, incremental: bool = True,
                                  validate_only: bool = False) -> None:
        await self._alter(RESOURCE_GROUP, group, set, delete, incremental, validate_only)

    async def alter_broker_configs(self, name: str, set: Mapping[str, str] | None = None,  # noqa: A002
                                   delete: Iterable[str] | None = None, incremental: bool = True,
                                   validate_only: bool = False) -> None:
        await self._alter(RESOURCE_BROKER, name, set, delete, incremental, validate_only)

    async def restore_cluster_id(self, cluster_id: str) -> None:
        await self._alter(RESOURCE_BROKER, "", {RESTORE_CLUSTER_ID: cluster_id}, (), True, False)

    async def _alter(self, resource_type: int, name: str, set_: Mapping[str, str] | None,
                     delete: Iterable[str] | None, incremental: bool, validate_only: bool) -> None:
        set_ = dict(set_ or {})
        delete = list(delete or ())
        if incremental:
            configs = [{"name": k, "config_operation": SET, "value": v} for k, v in set_.items()]
            configs += [{"name": k, "config_operation": DELETE, "value": None} for k in delete]
            key, version = 44, V_INCREMENTAL
        else:
            configs = [{"name": k, "value": v} for k, v in set_.items()]
            configs += [{"name": k, "value": None} for k in delete]
            key, version = 33, V_ALTER
        body = build(request_class(key, version), {
            "resources": [{"resource_type": resource_type, "resource_name": name,
                           "configs": configs}], "validate_only": validate_only})
        result = (await self._request(body)).responses[0]
        check(result.error_code, result.error_message, f"Altering the configs of {name!r}")
        if not validate_only:
            await self.mirror.catch_up()
