"""The transaction coordinator in a broker state opened in-process: its store on
`__transaction_state` (records read back after a restart, a Prepare* state completed with its
markers, tombstones for expired ids, NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS, ISR errors
mapped as Kafka maps them), timeouts from housekeeping, and the handlers' edges."""

from __future__ import annotations

import asyncio

import pytest

from inprocess import InProcess
from sandbox.broker.config import DEFAULT_LISTENER, BrokerConfig
from sandbox.broker.handlers import REGISTRY
from sandbox.broker.internal_log import read_records
from sandbox.broker.internal_topics import TXN_TOPIC
from sandbox.broker.state import BrokerState
from sandbox.broker.transactions import coordinator as coordinator_mod
from sandbox.broker.transactions.coordinator import settled
from sandbox.broker.transactions import links as links_mod
from sandbox.broker.transactions.records import COMPLETE_COMMIT, decode_key
from sandbox.log.batch import CONTROL_ABORT, CONTROL_COMMIT, control_type, iter_batches
from sandbox.protocol import build, response_class
from sandbox.protocol import errors as E
from sandbox.protocol.records import encode_batch


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Broker:
    """A broker state on a loop of its own; `reopen()` closes and opens it on the same folder."""

    def __init__(self, root, clock) -> None:
        self.root, self.clock = root, clock
        self.loop = asyncio.new_event_loop()
        self._open()

    def _open(self) -> None:
        self.state = BrokerState(BrokerConfig(data_dir=self.root, port=19093), clock=self.clock)
        self.loop.run_until_complete(self.state.open())
        self.b = InProcess(REGISTRY, self.loop, self.state, DEFAULT_LISTENER)

    def reopen(self) -> None:
        self.loop.run_until_complete(self.state.close())
        self._open()

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def settle(self, seconds: float = 0.2) -> None:
        self.run(asyncio.sleep(seconds))

    def close(self) -> None:
        self.run(self.state.close())
        self.loop.close()


@pytest.fixture
def node(tmp_path):
    n = Broker(tmp_path / "broker", Clock())
    try:
        yield n
    finally:
        n.close()


def start(n: Broker, tid: str = "tx", parts=(0, 1)) -> tuple[int, int]:
    if n.state.coordinator.topic("t") is None:
        n.b.create_topic("t", 2)
    return n.b.begin_txn(tid, "t", parts)


def describe(n: Broker, tid: str = "tx"):
    return n.b.call(65, 0, {"transactional_ids": [tid]}).transaction_states[0]


def markers(n: Broker, partition: int) -> list[int]:
    plog = n.state.partitions[("t", partition)]
    buf = plog.read(0, 1 << 20).tobytes()
    return [control_type(buf, pos, h) for pos, h in iter_batches(buf) if h.is_control]


def test_find_coordinator_for_a_transactional_id_makes_the_topic(node):
    resp = node.b.call(10, 4, {"key_type": 1, "coordinator_keys": ["a", "b"]})
    assert [(c.key, int(c.error_code), c.node_id) for c in resp.coordinators] == [("a", E.NONE, 1), ("b", E.NONE, 1)]
    t = node.state.coordinator.topic(TXN_TOPIC)
    assert t is not None and len(t.partitions) == 10 and t.configs["cleanup.policy"] == "compact"
    old = node.b.call(10, 2, {"key": "a", "key_type": 1})
    assert (int(old.error_code), old.node_id) == (E.NONE, 1)


def test_before_the_topic_exists_the_broker_is_not_the_coordinator(node):
    d = node.b.call(22, 5, {"transactional_id": "tx", "transaction_timeout": 1000, "producer_id": -1,
                            "producer_epoch": -1})
    assert int(d.error_code) == E.NOT_COORDINATOR
    assert int(describe(node).error_code) == E.NOT_COORDINATOR
    start(node)
    index = node.state.txns.store.partition_for("tx")
    node.state.txns.store._epochs.pop(index)   # led here but not read back yet
    assert node.state.txns.store.check("tx") == E.COORDINATOR_LOAD_IN_PROGRESS


def test_produce_to_the_transaction_log_is_refused(node):
    node.b.call(10, 4, {"key_type": 1, "coordinator_keys": ["tx"]})
    resp = node.b.call(0, 9, {"transactional_id": None, "acks": -1, "timeout": 5000, "topic_data": [
        {"name": TXN_TOPIC, "partition_data": [{"index": 0, "records": encode_batch(0, [b"x"])}]}]})
    assert int(resp.responses[0].partition_responses[0].error_code) == E.INVALID_TOPIC_EXCEPTION


def test_a_commit_writes_markers_then_survives_a_restart(node):
    pid, epoch = start(node)
    end = node.b.call(26, 3, {"transactional_id": "tx", "producer_id": pid, "producer_epoch": epoch, "committed": True})
    assert int(end.error_code) == E.NONE
    node.settle()
    assert markers(node, 0) == [CONTROL_COMMIT] and markers(node, 1) == [CONTROL_COMMIT]
    node.reopen()
    s = describe(node)
    assert (int(s.error_code), s.transaction_state, s.producer_id, s.producer_epoch) == (
        E.NONE, "CompleteCommit", pid, epoch)
    again = node.b.call(22, 5, {"transactional_id": "tx", "transaction_timeout": 10_000, "producer_id": -1,
                                "producer_epoch": -1})
    assert (int(again.error_code), again.producer_id, again.producer_epoch) == (E.NONE, pid, epoch + 1)


def test_the_processor_is_given_up_after_the_end_txn_reply_before_the_markers(node, monkeypatch):
    """The EndTxn reply wakes the producer, often on this processor: the markers wait until it ran
    (without the yield its commit_transaction() returned 0.2-0.3 ms later, docs/performance.md)."""
    pid, epoch = start(node)
    seen = []
    monkeypatch.setattr(coordinator_mod, "yield_cpu", lambda: seen.append(markers(node, 0)))
    end = node.b.call(26, 3, {"transactional_id": "tx", "producer_id": pid, "producer_epoch": epoch, "committed": True})
    assert int(end.error_code) == E.NONE and seen == []   # answered before the completion starts
    node.settle()
    assert seen == [[]]                                    # given up once, before any marker
    assert markers(node, 0) == [CONTROL_COMMIT]


def test_a_prepared_commit_found_at_load_is_completed(node):
    pid, epoch = start(node)
    txns = node.state.txns
    prepared = txns.machine.end_txn("tx", pid, epoch, True).write
    assert node.run(settled(txns.store.write(prepared))) == E.NONE   # durable, but no markers sent (a crash now)
    assert markers(node, 0) == []
    node.reopen()
    node.settle()
    assert markers(node, 0) == [CONTROL_COMMIT] and markers(node, 1) == [CONTROL_COMMIT]
    assert describe(node).transaction_state == "CompleteCommit"


def test_an_open_transaction_times_out_into_an_abort_with_a_bumped_epoch(node):
    pid, epoch = start(node)
    node.clock.now += 11
    node.run(node.state.txns.tick())
    node.settle()
    s = describe(node)
    assert (s.transaction_state, s.producer_epoch) == ("CompleteAbort", epoch + 1)
    assert markers(node, 0) == [CONTROL_ABORT]
    late = node.b.call(26, 1, {"transactional_id": "tx", "producer_id": pid, "producer_epoch": epoch, "committed": True})
    assert int(late.error_code) == E.INVALID_PRODUCER_EPOCH   # v1: PRODUCER_FENCED as older clients know it
    late = node.b.call(26, 3, {"transactional_id": "tx", "producer_id": pid, "producer_epoch": epoch, "committed": True})
    assert int(late.error_code) == E.PRODUCER_FENCED


def test_an_expired_id_becomes_a_tombstone(node):
    start(node, "idle", parts=(0,))
    node.clock.now += 100
    init = node.b.call(22, 5, {"transactional_id": "idle", "transaction_timeout": 10_000, "producer_id": -1,
                               "producer_epoch": -1})
    assert int(init.error_code) == E.CONCURRENT_TRANSACTIONS   # the open one is aborted first
    node.settle()
    node.clock.now += 7 * 24 * 3600
    node.run(node.state.txns.tick())
    assert int(describe(node, "idle").error_code) == E.TRANSACTIONAL_ID_NOT_FOUND
    index = node.state.txns.store.partition_for("idle")
    last = [(decode_key(k), v) for k, v in read_records(node.state.partitions[(TXN_TOPIC, index)])][-1]
    assert last == ("idle", None)
    node.reopen()
    assert int(describe(node, "idle").error_code) == E.TRANSACTIONAL_ID_NOT_FOUND


def test_isr_errors_are_answered_as_kafka_maps_them_and_the_state_stays(node, monkeypatch):
    pid, epoch = start(node)
    replicas = node.state.replicas

    async def timed_out(key, offset, timeout):
        return E.REQUEST_TIMED_OUT

    monkeypatch.setattr(replicas, "acked", lambda key, offset: None)   # the followers lag: it must wait
    monkeypatch.setattr(replicas, "wait_for_replicas", timed_out)
    end = node.b.call(26, 3, {"transactional_id": "tx", "producer_id": pid, "producer_epoch": epoch, "committed": True})
    assert int(end.error_code) == E.COORDINATOR_NOT_AVAILABLE
    assert describe(node).transaction_state == "Ongoing"
    monkeypatch.setattr(replicas, "check_produce", lambda key, acks: E.NOT_LEADER_OR_FOLLOWER)
    end = node.b.call(26, 3, {"transactional_id": "tx", "producer_id": pid, "producer_epoch": epoch, "committed": True})
    assert int(end.error_code) == E.NOT_COORDINATOR


def test_init_producer_id_keeps_the_idempotent_path_and_refuses_long_timeouts(node):
    start(node)
    idem = node.b.call(22, 5, {"transactional_id": None, "transaction_timeout": 10_000_000, "producer_id": -1,
                               "producer_epoch": -1})
    assert int(idem.error_code) == E.NONE and idem.producer_epoch == 0
    long = node.b.call(22, 5, {"transactional_id": "tx", "transaction_timeout": 900_001, "producer_id": -1,
                               "producer_epoch": -1})
    assert int(long.error_code) == E.INVALID_TRANSACTION_TIMEOUT


def test_markers_for_partitions_led_elsewhere_go_by_write_txn_markers_until_accepted(node, monkeypatch):
    """Broker 2 leads t-1: it is sent WriteTxnMarkers (27), retried while it answers a retriable
    error; t-0, led here, gets its marker locally."""
    start(node)
    state = node.state
    sent = []
    answers = iter([E.NOT_ENOUGH_REPLICAS, E.NONE])

    class Conn:
        host, port = "127.0.0.1", 1

        async def request(self, body, timeout):
            sent.append(body)
            m = body.markers[0]
            return build(response_class(27, 1), {"markers": [{"producer_id": m.producer_id, "topics": [
                {"name": t.name, "partitions": [{"partition_index": p, "error_code": next(answers)}
                                                for p in t.partition_indexes]} for t in m.topics]}]})

        def close(self):
            pass

    monkeypatch.setattr(state, "leaders", {**state.leaders, ("t", 1): (2, 0)})
    monkeypatch.setattr(links_mod, "broker_address", lambda st, b: ("127.0.0.1", 1) if b == 2 else None)
    monkeypatch.setattr(state.replicas, "connect", lambda host, port, client_id: Conn())
    sender = state.txns.markers
    ok = node.run(sender.send(7, 3, True, 0, {("t", 0), ("t", 1)}, lambda: True))
    assert ok and len(sent) == 2
    m = sent[0].markers[0]
    assert (m.producer_id, m.producer_epoch, m.transaction_result, [(t.name, list(t.partition_indexes))
                                                                    for t in m.topics]) == (7, 3, True, [("t", [1])])
    assert markers(node, 0) == [CONTROL_COMMIT]


def test_a_first_write_caught_by_a_leadership_change_leaves_no_pending_mark(node, monkeypatch):
    """A transactional id's first InitProducerId waits for the ISR while its `__transaction_state`
    partition's leadership moves away (and later back): the id was not yet among the partition's
    ids, so its pending write outlived the unload, and once this broker led the partition again
    every InitProducerId, AddPartitions and EndTxn of the id was answered CONCURRENT_TRANSACTIONS
    until a restart (found by review)."""
    import sandbox.broker.transactions.store as store_mod
    from sandbox.broker.internal_log import led_partitions as real_led

    b = node.b
    assert int(b.call(10, 4, {"key_type": 1, "coordinator_keys": ["other"]}).coordinators[0].error_code) == E.NONE
    store, tid = node.state.txns.store, "fresh"
    index = store.partition_for(tid)
    shift = {"bump": 0, "away": False}

    def led(state, name):
        out = real_led(state, name)
        if name == TXN_TOPIC and index in out:
            if shift["away"]:
                del out[index]
            else:
                out[index] += shift["bump"]
        return out

    monkeypatch.setattr(store_mod, "led_partitions", led)
    replicas = node.state.replicas
    real_acked, real_wait = replicas.acked, replicas.wait_for_replicas

    async def moved_while_waiting(key, offset, timeout, epoch=None):
        shift["away"] = True   # the followers lag, and the partition's leadership moves away
        store.on_metadata()
        return E.NOT_LEADER_OR_FOLLOWER

    def init():
        return int(b.call(22, 5, {"transactional_id": tid, "transaction_timeout": 10_000, "producer_id": -1,
                                  "producer_epoch": -1}).error_code)

    monkeypatch.setattr(replicas, "acked", lambda key, offset, epoch=None: None)
    monkeypatch.setattr(replicas, "wait_for_replicas", moved_while_waiting)
    assert init() == E.NOT_COORDINATOR
    monkeypatch.setattr(replicas, "acked", real_acked)
    monkeypatch.setattr(replicas, "wait_for_replicas", real_wait)
    shift.update(away=False, bump=1)   # led here again, in a later epoch
    store.on_metadata()
    assert index in store._epochs and tid not in node.state.txns.machine.pending
    assert init() == E.NONE


def test_a_commit_answered_while_housekeeping_aborts_another_transaction_stays_committed(tmp_path):
    """Found by review: two transactions past their timeout in one pass; while the first abort
    waited for the ISR of a replicated __transaction_state, the second producer's EndTxn(commit)
    was answered NONE, and the pass then wrote the abort it had decided before, under a bumped
    epoch: an acknowledged commit ended aborted (PRODUCER_FENCED next), a commit marker already on
    one partition. Each id is now decided again just before its write."""
    n = Broker(tmp_path / "b", Clock())
    try:
        n.b.create_topic("t", 2)
        n.b.begin_txn("a-tx", "t", (0,))
        p2, e2 = n.b.begin_txn("b-tx", "t", (1,))
        n.clock.now += 11   # both past their 10 s timeout

        async def slow(key, offset, timeout):
            await asyncio.sleep(0.1)
            return E.NONE
        rep = n.state.replicas
        rep.acked = lambda key, offset: None      # a replicated __transaction_state: writes wait for the ISR
        rep.wait_for_replicas = slow
        tick = n.loop.create_task(n.state.txns.tick())
        n.run(asyncio.sleep(0.01))                # the pass has begun: a-tx's abort waits for the ISR
        end = n.b.call(26, 3, {"transactional_id": "b-tx", "producer_id": p2, "producer_epoch": e2,
                               "committed": True})
        n.run(tick)
        n.settle(1.0)
        assert int(end.error_code) == E.NONE
        b = describe(n, "b-tx")
        assert (b.transaction_state, b.producer_epoch) == ("CompleteCommit", e2)
        assert markers(n, 1) == [CONTROL_COMMIT]
        assert describe(n, "a-tx").transaction_state == "CompleteAbort" and markers(n, 0) == [CONTROL_ABORT]
    finally:
        n.close()


def test_a_failed_completion_write_is_retried_without_writing_the_markers_again(node, monkeypatch):
    """Found by review: when the CompleteCommit write failed (NOT_ENOUGH_REPLICAS on
    __transaction_state, say), each retry sent every marker again, one more control batch per
    partition a second until it went through. Kafka retries the append only."""
    pid, epoch = start(node)
    store = node.state.txns.store
    real, failures = store.write, []

    def flaky(meta):
        if meta.state == COMPLETE_COMMIT and len(failures) < 3:
            failures.append(meta)
            return E.NOT_ENOUGH_REPLICAS
        return real(meta)

    monkeypatch.setattr(store, "write", flaky)
    end = node.b.call(26, 3, {"transactional_id": "tx", "producer_id": pid, "producer_epoch": epoch, "committed": True})
    assert int(end.error_code) == E.NONE
    node.settle(0.3)
    for _ in range(5):   # housekeeping's passes: the completion is tried again until it is written
        node.run(node.state.txns.tick())
        node.settle(0.1)
    assert len(failures) == 3 and describe(node).transaction_state == "CompleteCommit"
    assert markers(node, 0) == [CONTROL_COMMIT] and markers(node, 1) == [CONTROL_COMMIT]


def test_a_completion_left_unwritten_is_forgotten_once_this_broker_no_longer_leads_it(node, monkeypatch):
    """Found by review: a completion whose markers were written and whose write failed stayed in the
    retry table for good once its __transaction_state partition moved away (a leak per id)."""
    pid, epoch = start(node)
    store, txns = node.state.txns.store, node.state.txns
    real = store.write
    monkeypatch.setattr(store, "write", lambda meta: E.NOT_ENOUGH_REPLICAS if meta.state == COMPLETE_COMMIT
                        else real(meta))
    end = node.b.call(26, 3, {"transactional_id": "tx", "producer_id": pid, "producer_epoch": epoch, "committed": True})
    assert int(end.error_code) == E.NONE
    node.settle(0.3)
    assert "tx" in txns._markers_written
    monkeypatch.setattr(store, "still_leads", lambda tid, epoch: False)   # its partition moved away:
    txns.machine.unload(["tx"])                                          # its ids unloaded (store._unload)
    node.run(txns.tick())
    node.settle(0.1)
    assert txns._markers_written == {}
