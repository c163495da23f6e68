"""KafkaClient's transaction calls (a base of KafkaClient): the open transactions of the cluster,
listed on every broker (ListTransactions: each coordinates some transactional ids) and described by
the broker that listed them (DescribeTransactions), as kafka-transactions.sh does."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from .base import DESCRIBE_TRANSACTIONS, LIST_TRANSACTIONS, _check, _locked
from .connection import fmt
from .models import KafkaClientError, TransactionInfo

# a transaction is open from its first AddPartitionsToTxn until its markers are written
OPEN_STATES = frozenset({"Ongoing", "PrepareCommit", "PrepareAbort", "PrepareEpochFence"})


class TxnAdmin:
    @_locked
    def transactions(self, *, open_only: bool = True, skip: Collection[int] = ()) -> list[TransactionInfo]:
        """Transactions the brokers coordinate (only open ones unless open_only is False), sorted by
        transactional id; none of the brokers in `skip` (known not to answer). Brokers that do not
        know the transaction APIs count as having none."""
        out: dict[str, TransactionInfo] = {}
        for addr in self._brokers(skip):
            try:
                resp, _ = self._send(addr, LIST_TRANSACTIONS, {"state_filters": [], "producer_id_filters": [],
                                                                "duration_filter": -1})
            except KafkaClientError as e:
                if e.error_code is None and "does not support api" in e.message:
                    continue
                raise
            _check(resp.error_code, f"listing transactions on {fmt(addr)}")
            ids = [t.transactional_id for t in resp.transaction_states
                   if not open_only or t.transaction_state in OPEN_STATES]
            if not ids:
                continue
            desc, _ = self._send(addr, DESCRIBE_TRANSACTIONS, {"transactional_ids": ids})
            for t in desc.transaction_states:
                if int(t.error_code) or (open_only and t.transaction_state not in OPEN_STATES):
                    continue   # ended or moved meanwhile
                out[t.transactional_id] = TransactionInfo(
                    t.transactional_id, t.transaction_state, int(t.producer_id), int(t.producer_epoch),
                    _ms(t.transaction_timeout), _epoch_ms(t.transaction_start_time),
                    sorted((tp.topic, int(p)) for tp in t.topics for p in tp.partitions))
        return [out[k] for k in sorted(out)]


def _ms(delta: Any) -> int:
    """kio's timedelta (or a plain int of milliseconds) in milliseconds."""
    return int(delta.total_seconds() * 1000) if hasattr(delta, "total_seconds") else int(delta)


def _epoch_ms(when: Any) -> int:
    """kio's datetime (or milliseconds) since the epoch in milliseconds; -1 when unset."""
    if when is None:
        return -1
    return round(when.timestamp() * 1000) if hasattr(when, "timestamp") else int(when)
