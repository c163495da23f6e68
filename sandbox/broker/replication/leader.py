"""A partition leader's view of its followers (pure, clock injected): each follower's log end,
when it last caught up, the ISR (committed, and a change in flight), the high watermark, and
which followers should leave or join the ISR. Kafka's Partition/Replica state, without I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass
class Follower:
    leo: int = -1                    # log end offset reported by its last fetch (-1: unknown)
    caught_up_ms: int = 0            # the last time it had everything the leader had
    last_fetch_leader_leo: int = -1  # the leader's log end when it last fetched
    last_fetch_ms: int = 0
    log_start: int = -1              # log start offset reported by its last fetch (-1: unknown)


class LeaderState:
    """One led partition. `isr` is what the coordinator committed; `pending` the ISR asked for in
    an AlterPartition not answered yet (at most one in flight). The high watermark and acks=all
    count the union of both (Kafka's maximal ISR), so a follower being added or removed is
    never trusted less than the ISR the coordinator holds."""

    def __init__(self, node_id: int, replicas: tuple[int, ...], isr: tuple[int, ...],
                 leader_epoch: int, partition_epoch: int, now_ms: int, high_watermark: int) -> None:
        self.node_id = node_id
        self.replicas = tuple(replicas)
        self.isr = tuple(isr)
        self.leader_epoch = leader_epoch
        self.partition_epoch = partition_epoch
        self.pending: tuple[int, ...] | None = None
        self.high_watermark = high_watermark
        self.log: object = None   # the log it leads (identity: a topic made anew has another)
        # ISR members start as caught up now (as Kafka does at leadership start), others never
        self.followers = {r: Follower(caught_up_ms=now_ms if r in isr else 0)
                          for r in replicas if r != node_id}

    def set_replicas(self, replicas: tuple[int, ...]) -> None:
        """The replicas changed (a reassignment): a broker added is a follower that has caught
        up never, a broker removed is forgotten."""
        self.replicas = tuple(replicas)
        for r in replicas:
            if r != self.node_id and r not in self.followers:
                self.followers[r] = Follower()
        for r in [r for r in self.followers if r not in replicas]:
            del self.followers[r]

    def maximal_isr(self) -> set[int]:
        return set(self.isr) | set(self.pending or ())

    def committed(self, isr: tuple[int, ...], partition_epoch: int, now_ms: int) -> None:
        """The coordinator's ISR (from its answer or the metadata): any change in flight is done."""
        for r in isr:   # a follower that just joined was caught up when it was proposed
            f = self.followers.get(r)
            if f is not None and r not in self.isr:
                f.caught_up_ms = max(f.caught_up_ms, now_ms)
        self.isr = tuple(isr)
        self.partition_epoch = partition_epoch
        self.pending = None

    def follower_fetched(self, replica: int, fetch_offset: int, leader_leo: int, now_ms: int,
                         log_start: int = -1) -> None:
        """A follower fetched from fetch_offset: it holds everything below. Caught up now if it
        asks from the leader's log end, or at its previous fetch if it asks from the log end
        the leader had then (Kafka's lastCaughtUpTime rule)."""
        f = self.followers.get(replica)
        if f is None:
            return
        f.leo = fetch_offset
        if log_start >= 0:
            f.log_start = log_start
        if fetch_offset >= leader_leo:
            f.caught_up_ms = max(f.caught_up_ms, now_ms)
        elif fetch_offset >= f.last_fetch_leader_leo >= 0:
            f.caught_up_ms = max(f.caught_up_ms, f.last_fetch_ms)
        f.last_fetch_leader_leo = leader_leo
        f.last_fetch_ms = now_ms

    def low_watermark(self, leader_log_start: int, live: set[int]) -> int:
        """The smallest log start offset of the replicas on live brokers (Kafka's low watermark,
        which a DeleteRecords waits for): a follower that has not told its own yet counts as -1."""
        low = leader_log_start
        for r, f in self.followers.items():
            if r in live:
                low = min(low, f.log_start)
        return low

    def advance_high_watermark(self, leader_leo: int, clock: Callable[[], int] | None = None, max_lag_ms: int = 0,
                               eligible: Callable[[int, object], bool] | None = None, key: object = None) -> bool:
        """Move the high watermark to the smallest log end of the maximal ISR and of the followers
        outside it that are caught up within max_lag_ms and eligible (Kafka's
        shouldWaitForReplicaToJoinIsr: held for them, a follower keeping up with steady writes
        reaches the high watermark and joins; else, with the ISR the leader alone, the high
        watermark was the log end at every write, which such a follower never is); never back.
        True if it moved. (clock and eligible(replica, key) are asked only for such a follower.)"""
        hw = leader_leo
        isr = self.maximal_isr()
        for r in isr:
            if r == self.node_id:
                continue
            f = self.followers.get(r)
            hw = min(hw, f.leo if f is not None else -1)
        if clock is not None and any(r not in isr for r in self.followers):   # someone is outside the ISR
            now_ms = None   # read only then: this runs at every append of a replicated partition
            for r, f in self.followers.items():
                if r in isr or not 0 <= f.leo < hw:
                    continue
                now_ms = clock() if now_ms is None else now_ms
                if now_ms - f.caught_up_ms <= max_lag_ms and (eligible is None or eligible(r, key)):
                    hw = f.leo
        if hw > self.high_watermark:
            self.high_watermark = hw
            return True
        return False

    def to_expand(self, epoch_start_offset: int) -> list[int]:
        """Followers out of the ISR that have reached the high watermark (and the start of this
        leader's epoch): they may join."""
        isr = self.maximal_isr()
        return [r for r, f in sorted(self.followers.items())
                if r not in isr and f.leo >= self.high_watermark and f.leo >= epoch_start_offset]

    def to_shrink(self, now_ms: int, max_lag_ms: int, leader_leo: int | None = None) -> list[int]:
        """ISR followers that have not caught up for longer than replica.lag.time.max.ms; one at
        the leader's log end stays (Kafka's isCaughtUp: after the leader's loop stalled, or the
        clock jumped, followers that have everything are not dropped for the time alone)."""
        return [r for r in sorted(self.isr) if r != self.node_id and r in self.followers
                and (leader_leo is None or self.followers[r].leo != leader_leo)
                and now_ms - self.followers[r].caught_up_ms > max_lag_ms]
