"""Open transactions for `sandbox status` and `monitor`: each with its transactional id, state,
partitions and age, read through ListTransactions + DescribeTransactions; one open for longer than
its transaction.timeout.ms is hanging (its coordinator should have aborted it) and a problem."""

from __future__ import annotations

import time
from typing import Any

from sandbox.client import KafkaClient, KafkaClientError


def transaction_entries(client: KafkaClient, now_ms: int | None = None, *, skip: set[int] = frozenset()
                        ) -> tuple[list[dict[str, Any]], list[str]]:
    """(open transactions, problems) as a client sees them; none asked of the brokers in `skip`
    (known not to answer)."""
    lister = getattr(client, "transactions", None)   # a stand-in client of tests may not have it
    if lister is None:
        return [], []
    try:
        found = lister(skip=skip)
    except KafkaClientError as e:
        return [], [f"transactions unavailable: {e}"]
    now = int(time.time() * 1000) if now_ms is None else now_ms
    entries, problems = [], []
    for t in found:
        age = max(now - t.start_time_ms, 0) if t.start_time_ms >= 0 else None
        hanging = age is not None and t.timeout_ms > 0 and age > t.timeout_ms
        entries.append({"transactional_id": t.transactional_id, "state": t.state, "producer_id": t.producer_id,
                        "producer_epoch": t.producer_epoch,
                        "partitions": [{"topic": topic, "partition": p} for topic, p in t.partitions],
                        "age_ms": age, "timeout_ms": t.timeout_ms, "hanging": hanging})
        if hanging:
            problems.append(f"transaction {t.transactional_id} ({t.state}) has been open {age / 1000:.0f} s, longer "
                            f"than its timeout of {t.timeout_ms / 1000:g} s: its coordinator should have aborted it; "
                            f"read_committed consumers of {_topics(t.partitions)} wait until it ends")
    return entries, problems


def _topics(partitions: list[tuple[str, int]]) -> str:
    names = sorted({t for t, _p in partitions})
    return ", ".join(names) if names else "its partitions"


def age_text(ms: int | None) -> str:
    """An age for people: 850 ms, 12 s, 3 min."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms} ms"
    if ms < 120_000:
        return f"{ms / 1000:.0f} s"
    return f"{ms / 60_000:.0f} min"


def partitions_text(partitions: list[dict]) -> str:
    """t[0,1] u[2]: a transaction's partitions, by topic."""
    by_topic: dict[str, list[int]] = {}
    for p in partitions:
        by_topic.setdefault(p["topic"], []).append(p["partition"])
    return " ".join(f"{t}[{','.join(str(i) for i in sorted(ps))}]" for t, ps in sorted(by_topic.items()))
