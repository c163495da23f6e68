"""The broker-coordinator seam: both coordinators implement CoordinatorAPI with the same sync/async
shape, the broker is told typed changes (a removal names its topic), and the admin handlers both
servers share answer in-process through an AdminHost."""
from __future__ import annotations

import asyncio
import inspect
import uuid
from types import SimpleNamespace

from sandbox.admin_handlers import k20_delete_topics, k37_create_partitions, k44_incremental_alter_configs
from sandbox.coordinator import Coordinator
from sandbox.coordinator.api import CoordinatorAPI
from sandbox.coordinator.changes import (
    BrokerChanged, ChangeTranslator, ClusterChanged, MetadataReplaced, TopicChanged, TopicRemoved,
)
from sandbox.coordinator.client import LocalCoordinator, RemoteCoordinator
from sandbox.coordinator.handlers import REGISTRY as COORDINATOR_HANDLERS
from sandbox.coordinator.local import AsyncCoordinator
from sandbox.protocol import build, request_class


def _members(proto) -> set[str]:
    return {n for c in proto.__mro__ if c.__module__ == "sandbox.coordinator.api"
            for n in vars(c) if not n.startswith("_")} | set(CoordinatorAPI.__annotations__)


def test_both_coordinators_implement_the_protocol_with_the_same_shape():
    names = _members(CoordinatorAPI)
    assert {"create_topic", "delete_topic", "alter_configs", "allocate_producer_ids", "watch", "start"} <= names
    for name in sorted(names):
        kinds = []
        for cls in (LocalCoordinator, RemoteCoordinator):
            assert hasattr(cls, name) or name in ("broker_epoch",), f"{cls.__name__} lacks {name}"
            attr = inspect.getattr_static(cls, name, None)
            kinds.append(inspect.iscoroutinefunction(attr))
        expected = inspect.iscoroutinefunction(inspect.getattr_static(CoordinatorAPI, name, None))
        assert kinds == [expected, expected], f"{name}: async in protocol={expected}, local/remote={kinds}"
    # composition, not inheritance: the in-process coordinator is no Coordinator subclass
    assert not issubclass(LocalCoordinator, Coordinator)


def test_translator_names_removed_topics_and_types_every_record():
    tid = uuid.uuid4()
    t = SimpleNamespace(name="orders", topic_id=tid)
    tr = ChangeTranslator([t])
    new = str(uuid.uuid4())
    changes = tr.translate([
        {"type": "config", "topic_id": str(tid), "configs": {}},
        {"type": "topic", "name": "fresh", "topic_id": new, "configs": {}},
        {"type": "partition", "topic_id": new, "index": 0},
        {"type": "remove-topic", "topic_id": str(tid)},
        {"type": "remove-topic", "topic_id": str(uuid.uuid4())},   # never known here: nothing to drop
        {"type": "fence-broker", "broker_id": 2},
        {"type": "quota", "entity": {}},
        {"type": "snapshot", "state": {}},
    ], topics_now=[SimpleNamespace(name="fresh", topic_id=uuid.UUID(new))])
    assert changes == [TopicChanged("orders"), TopicChanged("fresh"), TopicChanged("fresh"),
                       TopicRemoved("orders", tid), BrokerChanged(2), ClusterChanged("quota"), MetadataReplaced()]
    assert tr.translate([{"type": "remove-topic", "topic_id": new}], []) == [TopicRemoved("fresh", uuid.UUID(new))]


def test_local_coordinator_watch_gives_typed_changes(tmp_path):
    async def main():
        lc = LocalCoordinator(tmp_path / "embedded", heartbeat_interval=0.05)
        seen: list = []
        try:
            await lc.start(1, "127.0.0.1", 9092)
            unwatch = lc.watch(seen.extend)
            info = await lc.create_topic("t", 2)
            await lc.delete_topic("t")
            unwatch()
            await lc.create_topic("after", 1)
        finally:
            await lc.stop()
        assert TopicChanged("t") in seen and seen[-1] == TopicRemoved("t", info.topic_id)
        assert TopicChanged("after") not in seen

    asyncio.run(main())


class _Host:
    """An AdminHost over an in-process Coordinator, as the coordinator service builds it."""

    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = AsyncCoordinator(coordinator)
        self.controller_id = -1
        self.alter_refusal = "no"

    def server_configs(self) -> dict[str, str]:
        return {}

    def broker_list(self, include_fenced: bool) -> list[dict]:
        return []


def _ctx(host, version):
    return SimpleNamespace(admin=host, api_version=version)


def test_shared_admin_handlers_answer_through_any_host(tmp_path):
    async def main(c: Coordinator):
        host = _Host(c)
        c.register_broker(1, "127.0.0.1", 9092)
        await host.coordinator.create_topic("t", 1)
        body = build(request_class(37, 3), {"topics": [{"name": "t", "count": 3, "assignments": None}],
                                             "timeout": 1000, "validate_only": False})
        out = await k37_create_partitions.handle(_ctx(host, 3), body)
        assert out["results"][0]["error_code"] == 0 and len(c.topic("t").partitions) == 3
        body = build(request_class(44, 1), {"validate_only": False, "resources": [{
            "resource_type": 2, "resource_name": "t", "configs": [
                {"name": "cleanup.policy", "config_operation": 2, "value": "compact"}]}]})
        out = await k44_incremental_alter_configs.handle(_ctx(host, 1), body)
        assert out["responses"][0]["error_code"] == 0
        assert sorted(c.topic("t").configs["cleanup.policy"].split(",")) == ["compact", "delete"]
        tid = c.topic("t").topic_id
        body = build(request_class(20, 6), {"topics": [{"name": None, "topic_id": tid}], "timeout_ms": 1000})
        out = await k20_delete_topics.handle(_ctx(host, 6), body)
        assert out["responses"][0]["name"] == "t" and out["responses"][0]["error_code"] == 0
        assert c.topic("t") is None
        body = build(request_class(20, 6), {"topics": [{"name": None, "topic_id": tid}], "timeout_ms": 1000})
        out = await k20_delete_topics.handle(_ctx(host, 6), body)
        assert out["responses"][0]["error_code"] == 100   # UNKNOWN_TOPIC_ID

    with Coordinator(tmp_path / "c") as c:
        asyncio.run(main(c))
    # the coordinator service discovers the shared modules next to its own
    assert COORDINATOR_HANDLERS[20].handle is k20_delete_topics.handle
