"""The partition leader's side of KIP-890 part 1 where another broker coordinates the
transactional id: what the coordinator's answers become in the Produce response (Kafka's
ReplicaManager mapping), and TxnVerifier's request and its failures, over a fake connection. The
whole path against real brokers: tests/integration/test_transactions_replicated.py."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from sandbox.broker.handlers.k00_produce import _verification_error
from sandbox.broker.transactions import links as links_mod
from sandbox.broker.transactions.verifier import TxnVerifier
from sandbox.client.async_connection import ExchangeFailed
from sandbox.protocol import build, errors as E, response_class


@pytest.mark.parametrize("code,version,answer", [
    (E.TRANSACTION_ABORTABLE, 9, E.INVALID_TXN_STATE),        # clients before v11 know INVALID_TXN_STATE
    (E.TRANSACTION_ABORTABLE, 11, E.TRANSACTION_ABORTABLE),
    (E.PRODUCER_FENCED, 11, E.INVALID_PRODUCER_EPOCH),         # what producers expect from a partition leader
    (E.COORDINATOR_NOT_AVAILABLE, 9, E.NOT_ENOUGH_REPLICAS),   # retriable: the producer asks again
    (E.NOT_COORDINATOR, 12, E.NOT_ENOUGH_REPLICAS),
    (E.COORDINATOR_LOAD_IN_PROGRESS, 9, E.NOT_ENOUGH_REPLICAS),
    (E.CONCURRENT_TRANSACTIONS, 9, E.NOT_ENOUGH_REPLICAS),
    (E.NETWORK_EXCEPTION, 9, E.NETWORK_EXCEPTION),
    (E.INVALID_PRODUCER_ID_MAPPING, 9, E.INVALID_PRODUCER_ID_MAPPING),
])
def test_a_coordinators_answer_becomes_what_kafka_answers_the_producer(code, version, answer):
    assert _verification_error(code, version) == answer


class _Conn:
    host, port = "127.0.0.1", 1

    def __init__(self, reply) -> None:
        self.reply, self.sent = reply, []

    async def request(self, body, timeout):
        self.sent.append(body)
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply

    def close(self) -> None:
        pass


def _state(coordinator, conn):
    store = SimpleNamespace(coordinator_for=lambda tid: coordinator)
    return SimpleNamespace(node_id=1, txns=SimpleNamespace(store=store),
                           replicas=SimpleNamespace(connect=lambda host, port, client_id: conn))


def test_verifier_asks_the_coordinators_broker_once_for_every_partition(monkeypatch):
    reply = build(response_class(24, 4), {"throttle_time": 0, "error_code": 0, "results_by_transaction": [
        {"transactional_id": "tx", "topic_results": [{"name": "t", "results_by_partition": [
            {"partition_index": 0, "partition_error_code": 0},
            {"partition_index": 2, "partition_error_code": E.TRANSACTION_ABORTABLE}]}]}]})
    conn = _Conn(reply)
    monkeypatch.setattr(links_mod, "broker_address", lambda st, b: ("127.0.0.1", 1) if b == 3 else None)
    v = TxnVerifier(_state(3, conn))
    got = asyncio.run(v.verify("tx", 7, 2, [("t", 0), ("t", 2)]))
    assert got == {("t", 0): E.NONE, ("t", 2): E.TRANSACTION_ABORTABLE}
    (body,) = conn.sent
    t = body.transactions[0]
    assert (t.transactional_id, t.producer_id, t.producer_epoch, t.verify_only) == ("tx", 7, 2, True)
    assert [(x.name, list(x.partitions)) for x in t.topics] == [("t", [0, 2])]


def test_verifier_without_a_coordinator_or_an_answer(monkeypatch):
    monkeypatch.setattr(links_mod, "broker_address", lambda st, b: ("127.0.0.1", 1))
    for coordinator in (None, -1):
        v = TxnVerifier(_state(coordinator, _Conn(None)))
        assert asyncio.run(v.verify("tx", 7, 0, [("t", 0)])) == {("t", 0): E.COORDINATOR_NOT_AVAILABLE}
    v = TxnVerifier(_state(2, _Conn(ExchangeFailed("down", timed_out=True))))
    assert asyncio.run(v.verify("tx", 7, 0, [("t", 0)])) == {("t", 0): E.NETWORK_EXCEPTION}
