"""Writing a transaction's commit or abort markers to every partition it touched: through
txn_markers.write_markers for partitions this broker leads, WriteTxnMarkers (27) to the leaders
of the others, each partition retried until its leader has the marker."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from sandbox.client.async_connection import ExchangeFailed
from sandbox.protocol import build, request_class
from sandbox.protocol.errors import (
    INVALID_PRODUCER_EPOCH, NONE, PRODUCER_FENCED, TRANSACTION_COORDINATOR_FENCED,
)

from .. import txn_markers
from .links import BrokerLinks

log = logging.getLogger("sandbox.broker")

WRITE_TXN_MARKERS_VERSION = 1
REQUEST_TIMEOUT_S = 10.0
BACKOFF_S = (0.02, 0.05, 0.1, 0.2, 0.5)
Partition = tuple[str, int]

# a partition whose leader answers one of these needs no marker from this transaction (Kafka's
# TransactionMarkerRequestCompletionHandler: a newer epoch is already there). UNKNOWN_TOPIC_OR_PARTITION
# is retried, as Kafka retries it: the leader may not know the partition yet, or may not have
# made its log; a deleted topic is dropped by this broker's own metadata (send)
_DONE = {NONE, INVALID_PRODUCER_EPOCH, PRODUCER_FENCED, TRANSACTION_COORDINATOR_FENCED}


class MarkerSender:
    def __init__(self, state: Any) -> None:
        self.state = state
        self.links = BrokerLinks(state, f"txn-coordinator-{state.node_id}")

    async def send(self, producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int,
                   partitions, still_valid: Callable[[], bool]) -> bool:
        """Markers to every partition, retried with backoff until all are written; False if
        `still_valid()` turned false meanwhile (this broker stopped coordinating)."""
        left = set(partitions)
        attempt = 0
        while left:
            if not still_valid():
                return False
            by_leader: dict[int, list[Partition]] = {}
            for key in sorted(left):
                leader = self.state.leaders.get(key)
                if leader is None:   # the topic was deleted
                    left.discard(key)
                    continue
                by_leader.setdefault(leader[0], []).append(key)
            calls = [self._send_to(b, producer_id, producer_epoch, commit, coordinator_epoch, keys)
                     for b, keys in by_leader.items() if b >= 0]
            # one leader (often this broker): awaited in place, no task per attempt
            results = [await calls[0]] if len(calls) == 1 else await asyncio.gather(*calls)
            for res in results:
                for key, code in res.items():
                    if code in _DONE:
                        if code != NONE:
                            log.warning("marker of producer %d not written to %s-%d: error %d", producer_id,
                                        key[0], key[1], code)
                        left.discard(key)
            if left:
                await asyncio.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
                attempt += 1
        return True

    async def _send_to(self, broker: int, producer_id: int, producer_epoch: int, commit: bool,
                       coordinator_epoch: int, keys: list[Partition]) -> dict[Partition, int]:
        if broker == self.state.node_id:
            return await txn_markers.write_markers(self.state, producer_id, producer_epoch, commit,
                                                   coordinator_epoch, keys)
        conn = self.links.get(broker)
        if conn is None:
            return {}
        topics: dict[str, list[int]] = {}
        for t, p in keys:
            topics.setdefault(t, []).append(p)
        body = build(request_class(27, WRITE_TXN_MARKERS_VERSION), {"markers": [{
            "producer_id": producer_id, "producer_epoch": producer_epoch, "transaction_result": commit,
            "coordinator_epoch": coordinator_epoch,
            "topics": [{"name": t, "partition_indexes": ps} for t, ps in topics.items()]}]})
        try:
            resp = await conn.request(body, REQUEST_TIMEOUT_S)
        except ExchangeFailed as e:
            log.debug("WriteTxnMarkers to broker %d: %s", broker, e)
            return {}
        out: dict[Partition, int] = {}
        for m in resp.markers:
            for t in m.topics:
                for p in t.partitions:
                    out[(t.name, p.partition_index)] = int(p.error_code)
        return out

    def close(self) -> None:
        self.links.close()
