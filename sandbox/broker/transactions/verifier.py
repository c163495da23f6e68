"""Before a transactional Produce opens a transaction on a partition, its leader asks the
transactional id's coordinator whether the partition belongs to the producer's ongoing
transaction (KIP-890 part 1, as Kafka's AddPartitionsToTxnManager does): a late or zombie write
would otherwise open a transaction that no marker ever ends, and hold back read_committed
consumers of that partition for good. Where this broker coordinates the id the answer is local;
otherwise AddPartitionsToTxn v4 with verify_only goes to the coordinator's broker."""

from __future__ import annotations

import logging
from typing import Any

from sandbox.client.async_connection import ExchangeFailed
from sandbox.protocol import build, request_class
from sandbox.protocol.errors import (
    CONCURRENT_TRANSACTIONS, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, INVALID_PRODUCER_EPOCH,
    INVALID_TXN_STATE, NETWORK_EXCEPTION, NONE, NOT_COORDINATOR, PRODUCER_FENCED, TRANSACTION_ABORTABLE,
)

from .links import BrokerLinks

log = logging.getLogger("sandbox.broker")

VERIFY_VERSION = 4
TIMEOUT_S = 5.0
Partition = tuple[str, int]


# a coordinator moving or busy (or not reached): the client retries, as Kafka answers these
RETRY_LATER = frozenset({CONCURRENT_TRANSACTIONS, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE,
                         NOT_COORDINATOR})


def refusal(code: int, retry_as: int, abortable_ok: bool) -> int:
    """What a request (Produce, TxnOffsetCommit) answers for a partition its transaction's
    coordinator did not confirm: `retry_as` where the client should just ask again,
    TRANSACTION_ABORTABLE only to versions that know it (INVALID_TXN_STATE before), a fenced
    producer as INVALID_PRODUCER_EPOCH; any other error as it is."""
    if code in RETRY_LATER:
        return retry_as
    if code == TRANSACTION_ABORTABLE and not abortable_ok:
        return INVALID_TXN_STATE
    return INVALID_PRODUCER_EPOCH if code == PRODUCER_FENCED else code


class TxnVerifier:
    def __init__(self, state: Any) -> None:
        self.state = state
        self.links = BrokerLinks(state, f"txn-verifier-{state.node_id}")
        # (topic, partition, producer id) -> Produce coroutines whose batches wait for an answer
        # before they are appended (see held, hold)
        self._held: dict[tuple[str, int, int], list] = {}
        self._prune_at = 4096

    def hold(self, producer_id: int, parts, pending) -> None:
        """`pending` (a coroutine not yet run) will append the producer's batches to `parts`."""
        if len(self._held) > self._prune_at:   # keys never asked again (producers gone): forget the finished
            for key in [k for k, cs in self._held.items() if all(c.cr_frame is None for c in cs)]:
                del self._held[key]
            self._prune_at = max(4096, 2 * len(self._held))   # not a scan per Produce if many still wait
        for t, p in parts:
            self._held.setdefault((t, p, producer_id), []).append(pending)

    def held(self, topic: str, index: int, producer_id: int) -> bool:
        """True while a Produce of this producer to this partition waits for its verification:
        a later one, pipelined behind it on the connection, must then wait its turn too, even if
        the transaction is open on the partition by now (the first held request opened it), or
        it would be appended ahead of the batches held before it (their sequence numbers come
        first). A coroutine that finished, or was closed unrun with its connection, holds nothing."""
        key = (topic, index, producer_id)
        pending = self._held.get(key)
        if pending is None:
            return False
        pending[:] = [c for c in pending if c.cr_frame is not None]
        if not pending:
            del self._held[key]
        return bool(pending)

    async def verify(self, tid: str, producer_id: int, producer_epoch: int,
                     parts: list[Partition]) -> dict[Partition, int]:
        """The coordinator's answer for each partition: NONE where it is in the ongoing
        transaction, else its error (COORDINATOR_NOT_AVAILABLE without a coordinator,
        NETWORK_EXCEPTION when it did not answer)."""
        txns = self.state.txns
        coordinator = txns.store.coordinator_for(tid)
        if coordinator == self.state.node_id:
            code, per = txns.verify(tid, producer_id, producer_epoch, parts)
            return {k: code if code != NONE else per.get(k, NONE) for k in parts}
        conn = self.links.get(coordinator) if coordinator is not None and coordinator >= 0 else None
        if conn is None:
            return dict.fromkeys(parts, COORDINATOR_NOT_AVAILABLE)
        topics: dict[str, list[int]] = {}
        for t, p in parts:
            topics.setdefault(t, []).append(p)
        body = build(request_class(24, VERIFY_VERSION), {"transactions": [{
            "transactional_id": tid, "producer_id": producer_id, "producer_epoch": producer_epoch,
            "verify_only": True, "topics": [{"name": t, "partitions": ps} for t, ps in topics.items()]}]})
        try:
            resp = await conn.request(body, TIMEOUT_S)
        except ExchangeFailed as e:
            log.debug("verifying %s with broker %d: %s", tid, coordinator, e)
            return dict.fromkeys(parts, NETWORK_EXCEPTION)
        if int(resp.error_code) != NONE:
            return dict.fromkeys(parts, int(resp.error_code))
        out = dict.fromkeys(parts, NONE)
        for txn in resp.results_by_transaction:
            for t in txn.topic_results:
                for r in t.results_by_partition:
                    if (t.name, int(r.partition_index)) in out:
                        out[(t.name, int(r.partition_index))] = int(r.partition_error_code)
        return out

    def close(self) -> None:
        self.links.close()
