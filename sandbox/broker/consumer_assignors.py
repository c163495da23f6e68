"""Server-side assignors of KIP-848 consumer groups, `uniform` (the default) and `range`: pure
functions from the members' subscriptions, the topics' sizes and the previous target assignment
to the next target assignment. Deterministic: the same inputs always give the same answer."""
from __future__ import annotations

from typing import Callable

TP = tuple[str, int]  # (topic name, partition)
Subscriptions = dict[str, frozenset[str]]  # member id -> subscribed topic names (resolved)
Target = dict[str, frozenset[TP]]


def uniform(subs: Subscriptions, topics: dict[str, int], previous: Target) -> Target:
    """Kafka's UniformAssignor in spirit: every member gets as many partitions as the others
    (within one) among the topics it subscribes to, and keeps what it had where that stays
    balanced, so a rebalance moves as few partitions as it can."""
    members = sorted(subs)
    if not members:
        return {}
    wanted = [(t, p) for t in sorted(topics) for p in range(topics[t]) if any(t in subs[m] for m in members)]
    valid = set(wanted)
    kept: dict[str, list[TP]] = {m: [] for m in members}
    taken: set[TP] = set()
    for m in members:
        for tp in sorted(previous.get(m, ())):
            if tp in valid and tp not in taken and tp[0] in subs[m]:
                kept[m].append(tp)
                taken.add(tp)
    if len({subs[m] for m in members}) == 1:
        return _homogeneous(members, wanted, kept)
    return _heterogeneous(members, subs, wanted, kept)


def _homogeneous(members: list[str], wanted: list[TP], kept: dict[str, list[TP]]) -> Target:
    """Everyone subscribes to the same topics: quotas of n // m, the extra ones to the members that
    already hold the most (they keep more)."""
    q, r = divmod(len(wanted), len(members))
    order = sorted(members, key=lambda m: (-len(kept[m]), m))
    quota = {m: q + (1 if i < r else 0) for i, m in enumerate(order)}
    out = {m: set(kept[m][:quota[m]]) for m in members}
    owned = set().union(*out.values())
    free = [tp for tp in wanted if tp not in owned]
    free.reverse()
    for m in members:
        while len(out[m]) < quota[m] and free:
            out[m].add(free.pop())
    return {m: frozenset(v) for m, v in out.items()}


def _heterogeneous(members: list[str], subs: Subscriptions, wanted: list[TP],
                   kept: dict[str, list[TP]]) -> Target:
    """Different subscriptions: new partitions go to the least loaded subscriber, then partitions
    move from the most to the least loaded eligible member until no move narrows the gap."""
    out = {m: set(kept[m]) for m in members}
    owned = set().union(*out.values())
    for tp in wanted:
        if tp not in owned:
            m = min((m for m in members if tp[0] in subs[m]), key=lambda x: (len(out[x]), x))
            out[m].add(tp)
    for _ in range(len(wanted) + 1):  # every move narrows a gap; bounded anyway
        move = _one_move(members, subs, out)
        if move is None:
            break
        src, dst, tp = move
        out[src].remove(tp)
        out[dst].add(tp)
    return {m: frozenset(v) for m, v in out.items()}


def _one_move(members: list[str], subs: Subscriptions, out: dict[str, set[TP]]) -> tuple[str, str, TP] | None:
    for src in sorted(members, key=lambda x: (-len(out[x]), x)):
        for tp in sorted(out[src]):
            dst = [m for m in members if tp[0] in subs[m] and len(out[m]) < len(out[src]) - 1]
            if dst:
                return src, min(dst, key=lambda x: (len(out[x]), x)), tp
    return None


def range_assignor(subs: Subscriptions, topics: dict[str, int], previous: Target) -> Target:
    """Kafka's RangeAssignor: per topic, its subscribers sorted by member id get contiguous
    ranges, the first ones one partition more. (Kafka 4.0's also keeps co-partitioned ranges
    sticky across member changes; this one recomputes them.)"""
    out: dict[str, set[TP]] = {m: set() for m in subs}
    for t in sorted(topics):
        ms = sorted(m for m in subs if t in subs[m])
        if not ms:
            continue
        q, r = divmod(topics[t], len(ms))
        start = 0
        for i, m in enumerate(ms):
            n = q + (1 if i < r else 0)
            out[m].update((t, p) for p in range(start, start + n))
            start += n
    return {m: frozenset(v) for m, v in out.items()}


ASSIGNORS: dict[str, Callable[[Subscriptions, dict[str, int], Target], Target]] = {
    "uniform": uniform, "range": range_assignor}
DEFAULT_ASSIGNOR = "uniform"  # group.consumer.assignors = uniform, range: the first is the default
