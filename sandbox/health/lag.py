"""Lag trends and topic throughput from successive snapshots: per (group, topic, partition) a short
(time, lag) history, whether a group's lag is growing, and records/s into each topic."""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Callable, Iterable

GROWING, SHRINKING, STEADY, UNKNOWN = "growing", "shrinking", "steady", "unknown"
MIN_SAMPLES = 3        # a trend needs at least this many samples ...
MIN_SPAN_S = 2.0       # ... spanning at least this long
RATE_WINDOW_S = 5.0    # records/s is averaged over (up to) this long

Key = tuple[str, str | None, int | None]   # (group, topic, partition); (group, None, None) = the sum


def _trend(samples: deque[tuple[float, int]]) -> str:
    """growing: lag rose over the last >= 3 samples spanning >= 2 s (never fell in between)."""
    if len(samples) < MIN_SAMPLES:
        return UNKNOWN
    window: list[tuple[float, int]] = []
    t_last = samples[-1][0]
    for t, lag in reversed(samples):
        window.append((t, lag))
        if len(window) >= MIN_SAMPLES and t_last - t >= MIN_SPAN_S:
            break
    window.reverse()
    if len(window) < MIN_SAMPLES or window[-1][0] - window[0][0] < MIN_SPAN_S:
        return UNKNOWN
    lags = [lag for _, lag in window]
    steps = [b - a for a, b in zip(lags, lags[1:])]
    if lags[-1] > lags[0] and all(d >= 0 for d in steps):
        return GROWING
    if lags[-1] < lags[0] and all(d <= 0 for d in steps):
        return SHRINKING
    return STEADY


def _latest_ends(series: deque[tuple[float, dict[int, int]]]) -> dict[int, int]:
    """Each partition's end offset as last read (a partition missing from the last sample keeps
    the one before)."""
    out: dict[int, int] = {}
    for _t, ends in series:
        out.update(ends)
    return out


class LagTracker:
    """Feed it status dicts (observe_status) or raw figures (observe_lag / observe_end_offsets);
    ask trend(group), partition_trend(group, topic, partition) and rate(topic)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_samples: int = 60) -> None:
        self._clock = clock
        self._max = max(max_samples, MIN_SAMPLES)
        self._lag: dict[Key, deque[tuple[float, int]]] = {}
        # per topic: (time, {partition: end offset}); a sum alone is kept as partition -1
        self._ends: dict[str, deque[tuple[float, dict[int, int]]]] = {}

    # ------------------------------------------------------------------ feeding

    def _add(self, series: deque[tuple[float, Any]], now: float, value: Any) -> None:
        if series and now <= series[-1][0]:
            series[-1] = (series[-1][0], value)   # same instant: the newer figure wins
        else:
            series.append((now, value))

    def observe_lag(self, group: str, lags: Iterable[Any], now: float | None = None) -> None:
        """One sample of a group's lag: PartitionLag tuples (client.group_lag), dicts with
        topic/partition/lag (status "partitions"), or (topic, partition, lag) triples."""
        now = self._clock() if now is None else now
        total, seen, unknown = 0, False, False
        for item in lags:
            if isinstance(item, dict):
                topic, part, lag = item.get("topic"), item.get("partition"), item.get("lag")
            elif hasattr(item, "lag"):
                topic, part, lag = item.topic, item.partition, item.lag
            else:
                topic, part, lag = item
            if lag is None or topic is None or part is None:
                unknown = True   # its leader not asked (a broker restarting): the sum would understate
                continue
            lag = max(int(lag), 0)
            key = (group, str(topic), int(part))
            self._add(self._lag.setdefault(key, deque(maxlen=self._max)), now, lag)
            total += lag
            seen = True
        if seen and not unknown:
            self._add(self._lag.setdefault((group, None, None), deque(maxlen=self._max)), now, total)

    def observe_group_total(self, group: str, lag: int | None, now: float | None = None) -> None:
        """A sample of the group's summed lag only (when no per-partition detail is known)."""
        if lag is None:
            return
        now = self._clock() if now is None else now
        self._add(self._lag.setdefault((group, None, None), deque(maxlen=self._max)), now, max(int(lag), 0))

    def observe_end_offsets(self, topic: str, offsets: dict[int, int] | int | None,
                            now: float | None = None) -> None:
        """One sample of a topic's end offsets ({partition: offset} or their sum)."""
        if offsets is None:
            return
        now = self._clock() if now is None else now
        ends = {int(p): int(o) for p, o in offsets.items()} if isinstance(offsets, dict) else {-1: int(offsets)}
        series = self._ends.setdefault(topic, deque(maxlen=self._max))
        # a partition whose end went back: the topic was re-created or wiped, start counting again.
        # A partition missing from this sample (its leader did not answer) is no such sign
        last = _latest_ends(series)
        if any(o < last[p] for p, o in ends.items() if p in last):
            series.clear()
        self._add(series, now, ends)

    def observe_status(self, status: dict, now: float | None = None) -> None:
        """Everything one status dict (build_status) says about topics and groups."""
        now = self._clock() if now is None else now
        for t in status.get("topics") or []:
            detail = t.get("partition_offsets")
            if detail:
                self.observe_end_offsets(t["name"], {d["partition"]: d["end_offset"] for d in detail}, now)
            else:
                self.observe_end_offsets(t["name"], t.get("end_offsets"), now)
        for g in status.get("groups") or []:
            if g.get("partitions"):
                self.observe_lag(g["group"], g["partitions"], now)
            else:
                self.observe_group_total(g["group"], g.get("lag"), now)
        self.forget(topics={t["name"] for t in status.get("topics") or []},
                    groups={g["group"] for g in status.get("groups") or []})

    def forget(self, *, topics: set[str] | None = None, groups: set[str] | None = None) -> None:
        """Drop the history of topics / groups not in these sets (deleted ones)."""
        if topics is not None:
            for name in [n for n in self._ends if n not in topics]:
                del self._ends[name]
        if groups is not None:
            for key in [k for k in self._lag if k[0] not in groups]:
                del self._lag[key]

    # ------------------------------------------------------------------ asking

    def trend(self, group: str) -> str:
        """"growing" | "shrinking" | "steady" | "unknown" for the group's summed lag."""
        series = self._lag.get((group, None, None))
        return _trend(series) if series else UNKNOWN

    def partition_trend(self, group: str, topic: str, partition: int) -> str:
        series = self._lag.get((group, topic, int(partition)))
        return _trend(series) if series else UNKNOWN

    def history(self, group: str, topic: str | None = None, partition: int | None = None
                ) -> list[tuple[float, int]]:
        return list(self._lag.get((group, topic, partition), ()))

    def rate(self, topic: str) -> float | None:
        """Records/s into the topic over the last few seconds; None until two samples exist."""
        series = self._ends.get(topic)
        if not series or len(series) < 2:
            return None
        t_last, last = series[-1]
        within = [(t, v) for t, v in series if t < t_last and t_last - t <= RATE_WINDOW_S]
        first_t, first = within[0] if within else series[-2]
        common = [p for p in last if p in first]   # only partitions both samples read
        if t_last <= first_t or not common:
            return None
        return max(sum(last[p] - first[p] for p in common), 0) / (t_last - first_t)
