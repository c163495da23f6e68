"""Property tests: random command sequences keep the metadata invariants, and reloading the
journal (snapshot + tail, after a clean close or a crash) always gives back the same state."""
from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from coordinator.coordinator_helpers import FakeClock
from sandbox.coordinator import Coordinator, CoordinatorError, MetadataMachine

NAMES = st.sampled_from(["a", "b", "c.d", "c_d", "__internal", "bad name"])
BROKERS = st.integers(min_value=1, max_value=4)
CONFIGS = st.dictionaries(
    st.sampled_from(["retention.ms", "cleanup.policy", "segment.bytes",
                     "unclean.leader.election.enable", "bogus"]),
    st.sampled_from(["1000", "-1", "compact", "true", "x"]), max_size=2)

GOOD_CONFIGS = st.dictionaries(
    st.sampled_from(["retention.ms", "segment.bytes", "min.insync.replicas"]),
    st.sampled_from(["1000", "2048"]), max_size=2) | st.just(
    {"unclean.leader.election.enable": "true"})


class CoordinatorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="coord-prop-"))
        self.clock = FakeClock()
        self.c = self._open()
        self.epochs: dict[int, int] = {}
        self.leader_epochs: dict[tuple, int] = {}
        self.pids_seen = 0

    def _open(self) -> Coordinator:
        return Coordinator(self.dir, clock=self.clock, session_timeout_ms=3000,
                           snapshot_every=7)

    def _try(self, fn, *args, **kw):
        try:
            return fn(*args, **kw)
        except CoordinatorError:
            return None

    @initialize(count=st.integers(0, 3))
    def some_brokers(self, count):
        for b in range(1, count + 1):
            self.register(b, True)

    @rule(b=BROKERS, new_incarnation=st.booleans())
    def register(self, b, new_incarnation):
        old = self.c.broker(b)
        inc = old.incarnation_id if old and not new_incarnation else uuid.uuid4()
        epoch = self._try(self.c.register_broker, b, "127.0.0.1", 9090 + b, None, inc)
        if epoch is not None:
            self.epochs[b] = epoch

    @rule(b=BROKERS)
    def heartbeat(self, b):
        self._try(self.c.heartbeat, b, self.epochs.get(b, 0))

    @rule()
    def heartbeat_all(self):
        for b, epoch in self.epochs.items():
            self._try(self.c.heartbeat, b, epoch)

    @rule(b=BROKERS)
    def shutdown(self, b):
        self._try(self.c.unregister_broker, b)

    @rule(seconds=st.floats(min_value=0, max_value=2))
    def time_passes(self, seconds):
        self.clock.advance(seconds)
        self.c.tick()

    @rule(name=NAMES, parts=st.integers(-1, 4), rf=st.integers(-1, 3), configs=CONFIGS)
    def create_topic(self, name, parts, rf, configs):
        self._try(self.c.create_topic, name, parts, rf, configs)

    @rule(name=NAMES, parts=st.integers(1, 4), configs=GOOD_CONFIGS)
    def create_good_topic(self, name, parts, configs):
        self._try(self.c.create_topic, name, parts, -1, configs)

    @rule(name=NAMES)
    def delete_topic(self, name):
        self._try(self.c.delete_topic, name)

    @rule(name=NAMES, total=st.integers(0, 6))
    def create_partitions(self, name, total):
        self._try(self.c.create_partitions, name, total)

    @rule(name=NAMES, configs=GOOD_CONFIGS, delete=st.lists(st.sampled_from(
        ["retention.ms", "segment.bytes"]), max_size=1), incremental=st.booleans())
    def alter_configs(self, name, configs, delete, incremental):
        self._try(self.c.alter_configs, name, configs, delete if incremental else None,
                  incremental)

    @rule(count=st.integers(0, 2000))
    def producer_ids(self, count):
        first = self._try(self.c.allocate_producer_ids, count)
        if first is not None:
            assert first >= self.pids_seen
            self.pids_seen = first + count

    @rule(clean=st.booleans())
    def restart(self, clean):
        before = self.c.state()
        if clean:
            self.c.close()
        else:  # crash: no final snapshot, lock left behind by a dead pid
            self.c._journal._log.close()
            self.c._journal._log = None
            (self.dir / "coordinator.lock").write_text("999999999")
        self.c = self._open()
        after = self.c.state()
        # reopening may fence nobody (sessions restart), so the state must be identical
        assert after == before

    @invariant()
    def metadata_is_consistent(self):
        state = self.c.state()
        live = {b for b, info in state.brokers.items() if not info.fenced}
        ids = [t.topic_id for t in state.topics.values()]
        assert len(ids) == len(set(ids))
        for topic in state.topics.values():
            assert topic.partitions
            rf = len(topic.partitions[0].replicas)
            for i, p in enumerate(topic.partitions):
                assert p.index == i and len(p.replicas) == rf
                assert len(set(p.replicas)) == rf and set(p.replicas) <= set(state.brokers)
                assert p.isr and set(p.isr) <= set(p.replicas)
                if p.leader != -1:
                    assert p.leader in p.isr and p.leader in live
                key = (topic.topic_id, i)
                assert p.leader_epoch >= self.leader_epochs.get(key, 0)
                self.leader_epochs[key] = p.leader_epoch
        # the journaled records alone rebuild the same state
        replay = MetadataMachine()
        replay.restore(state.to_dict())
        assert replay.state() == state

    def teardown(self):
        try:
            state = self.c.state()
            self.c.close()
            reopened = self._open()
            assert reopened.state() == state
            reopened.close()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


CoordinatorMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=50, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestCoordinatorProperties = CoordinatorMachine.TestCase


def test_machine_records_replay_to_same_state():
    """Applying a command's records to a fresh machine fed the same history gives the same
    state: the records, not the commands, carry every decision (placement, epochs)."""
    live = MetadataMachine()
    history: list[dict] = []

    def do(records):
        for r in records:
            live.apply(r)
        history.extend(records)

    do(live.set_cluster_id("x"))
    for b in (1, 2, 3):
        do(live.register_broker(b, "h", 9000 + b, None, uuid.uuid4(), now_ms=0))
    do(live.create_topic("t", 5, 3, {"retention.ms": "5"}, uuid.uuid4()))
    do(live.fence_expired(10_000, 1000))
    do(live.register_broker(2, "h", 9002, None, uuid.uuid4(), now_ms=10_000))
    replay = MetadataMachine()
    for r in history:
        replay.apply(r)
    assert replay.state() == live.state()
