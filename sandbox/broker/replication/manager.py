"""The broker's replica manager: which partitions it leads and follows (from the metadata),
the leader side of replication (followers' progress, the high watermark, ISR changes through
the coordinator's AlterPartition, acks=all waiters) and one fetcher per leader it follows.
All on the broker's one event loop; partitions with one replica never enter it."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from sandbox.protocol.errors import (
    FENCED_LEADER_EPOCH,
    NONE,
    NOT_ENOUGH_REPLICAS,
    NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    NOT_LEADER_OR_FOLLOWER,
    REQUEST_TIMED_OUT,
    UNKNOWN_LEADER_EPOCH,
)

from sandbox.client.async_connection import AsyncConnection

from .fetcher import ReplicaFetcher
from .leader import LeaderState

log = logging.getLogger("sandbox.broker")

Key = tuple[str, int]
DEFAULT_REPLICA_LAG_MS = 30000   # Kafka's replica.lag.time.max.ms


class ReplicaManager:
    def __init__(self, state: Any, *, clock: Callable[[], float] = time.time,
                 replica_lag_ms: int = DEFAULT_REPLICA_LAG_MS, default_min_isr: int = 1,
                 emit: Callable[[str, dict], None] | None = None,
                 connect: Callable[[str, int, str], Any] | None = None) -> None:
        self.state = state
        # how a fetcher reaches a leader: (host, port, client id) -> a connection with
        # `await request(body, timeout)` (a fake transport in the replication simulation)
        self.connect = connect or (lambda host, port, client_id: AsyncConnection(host, port, client_id, 2.0))
        self.node_id = state.node_id
        self.clock = clock
        self.replica_lag_ms = replica_lag_ms
        self.default_min_isr = default_min_isr
        self.emit = emit or (lambda kind, detail: None)
        self.leading: dict[Key, LeaderState] = {}
        self.min_isr: dict[Key, int] = {}
        self.topic_ids: dict[str, Any] = {}
        self.following: dict[Key, tuple[int, int]] = {}   # key -> (leader id, leader epoch)
        self.fetchers: dict[int, ReplicaFetcher] = {}
        self._waiters: dict[Key, list[tuple[int, asyncio.Future]]] = {}
        self._deletions: dict[Key, list[tuple[int, asyncio.Future]]] = {}   # DeleteRecords waits
        self._altering: set[Key] = set()
        self._tasks: set[asyncio.Task] = set()
        self.closed = False
        # led or followed here, but its log could not be opened (a held file): not replicated here,
        # and reported offline to the coordinator with each heartbeat until it opens
        self.unopened: set[Key] = set()

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ---- roles, from the metadata ----------------------------------------------------------
    def on_metadata(self, topics: list) -> None:
        """Take up the roles the metadata gives this broker: lead, follow, or neither."""
        now = self._now_ms()
        seen: set[Key] = set()
        held, self.unopened = self.unopened, set()
        try:
            newly_replicated = self._take_roles(topics, now, seen, held)
        except BaseException:   # an error part way: the keys not reached yet keep their place
            self.unopened |= held - seen
            raise
        for key in [k for k in set(self.leading) | set(self.following) if k not in seen]:
            self._drop(key, NOT_LEADER_OR_FOLLOWER)
        for lid in [lid for lid, f in self.fetchers.items() if not f.partitions]:
            self.fetchers.pop(lid).stop()
        logs = getattr(self.state, "logs", None)
        if newly_replicated and logs is not None:
            # on disk before any replicated append: a log reopened without its entry would take
            # its log end as its high watermark, and keep batches no other replica has
            logs.checkpoint_high_watermarks()

    def _take_roles(self, topics: list, now: int, seen: set[Key], held: set[Key]) -> bool:
        """on_metadata's pass over the partitions (`seen`: those held here); True if one became
        replicated."""
        newly_replicated = False
        self.topic_ids = {t.name: t.topic_id for t in topics}
        for t in topics:
            own = t.configs.get("min.insync.replicas")
            min_isr = _int(own, self.default_min_isr)
            for p in t.partitions:
                key = (t.name, p.index)
                plog = self.state.partitions.get(key)
                if self.node_id not in p.replicas or plog is None:
                    continue
                seen.add(key)
                # a topic of one replica that sets no min.insync.replicas of its own takes 1: the
                # coordinator caps the stack's default at the replication factor and writes none
                # when that leaves 1 (this broker's default is the stack's, often 2)
                self.min_isr[key] = min_isr if own is not None or len(p.replicas) > 1 else 1
                if len(p.replicas) == 1:
                    # led here alone now (a reassignment shrank the replicas to this leader): the
                    # writes waiting for followers are on the only replica; wait_for_replicas checks
                    # the leader epoch before it answers them
                    self._drop(key, NONE if p.leader == self.node_id else NOT_LEADER_OR_FOLLOWER)
                    if plog.__dict__.get("hw_follows_leo") is not True:
                        # settled, an unopened log's included: a later reassignment keeps its HW
                        plog.replica.set_replicated(False)
                    continue
                # a log already found unopenable stays so, led or followed, until it opens
                # (retry_unopened): the coordinator is told it is offline here (KIP-858)
                if not plog.opened and (p.leader == self.node_id or plog.__dict__.get("hw_follows_leo")
                                        or key in held) \
                        and not self._opened(key, plog, held):
                    self._drop(key, NOT_LEADER_OR_FOLLOWER)   # not led here until it opens
                    continue
                if plog.hw_follows_leo:   # its high watermark stops following its log end
                    plog.replica.set_replicated(True)
                    newly_replicated = True
                if p.leader == self.node_id:
                    self._lead(key, plog, p, now)
                elif p.leader >= 0:
                    self._follow(key, plog, p.leader, p.leader_epoch)
                else:
                    self._drop(key, NOT_LEADER_OR_FOLLOWER)
        return newly_replicated

    def _lead(self, key: Key, plog, p, now: int) -> None:
        ls = self.leading.get(key)
        # a topic deleted and made again in one update is another log at the same epochs: the
        # old one's high watermark, ISR and partition epoch would hold the new one still
        if ls is None or ls.leader_epoch != p.leader_epoch or ls.log is not plog:
            self._stop_following(key)
            plog.replica.set_replicated(True)
            plog.replica.begin_epoch(p.leader_epoch)
            self._fail_waiters(key, NOT_LEADER_OR_FOLLOWER)
            self.leading[key] = ls = LeaderState(self.node_id, p.replicas, p.isr, p.leader_epoch,
                                                 p.partition_epoch, now, plog.high_watermark)
            ls.log = plog
            self.emit("leader", {"topic": key[0], "partition": key[1], "epoch": p.leader_epoch,
                                 "isr": list(p.isr)})
        elif p.partition_epoch > ls.partition_epoch:
            ls.committed(p.isr, p.partition_epoch, now)
        if ls.replicas != p.replicas:   # a reassignment added or removed followers
            ls.set_replicas(p.replicas)
        self._advance(key, ls, plog)

    def _opened(self, key: Key, plog, held: set[Key]) -> bool:
        """Open a log opened at its first use (LogDir.open) before leading it; False when a file
        of it is held by another program (Windows): it is not led here until it opens (tried
        again every second, BrokerState.retry_unopened; led_log answers KAFKA_STORAGE_ERROR)."""
        try:
            plog.open_now()
        except PermissionError as e:
            if key not in held:   # one line, not one a second
                log.warning("%s-%d: its log cannot be opened yet (%s); not replicated here until that "
                            "program lets go", key[0], key[1], e)
            self.unopened.add(key)
            return False
        return True

    def _follow(self, key: Key, plog, leader: int, epoch: int) -> None:
        if self.leading.pop(key, None) is not None:
            self._fail_waiters(key, NOT_LEADER_OR_FOLLOWER)
        plog.replica.set_replicated(True)
        if self.following.get(key) == (leader, epoch):
            return
        self._stop_following(key)
        self.following[key] = (leader, epoch)
        fetcher = self.fetchers.get(leader)
        if fetcher is None:
            fetcher = self.fetchers[leader] = ReplicaFetcher(self, leader)
        fetcher.add(key, epoch)

    def _stop_following(self, key: Key) -> None:
        was = self.following.pop(key, None)
        if was is not None and was[0] in self.fetchers:
            self.fetchers[was[0]].remove(key)

    def _drop(self, key: Key, code: int) -> None:
        self._stop_following(key)
        if self.leading.pop(key, None) is not None:
            self._fail_waiters(key, code)

    # ---- the leader side -------------------------------------------------------------------
    def replicated(self, key: Key) -> bool:
        return key in self.leading

    def check_produce(self, key: Key, acks: int) -> int:
        """Before appending: NOT_ENOUGH_REPLICAS for acks=all while the ISR is smaller than
        min.insync.replicas (also for a partition with one replica whose min.insync.replicas
        says more); NOT_LEADER_OR_FOLLOWER when this broker may no longer lead."""
        ls = self.leading.get(key)
        if ls is None:   # led alone: its ISR is this broker (Kafka refuses acks=all below min ISR all the same)
            return NOT_ENOUGH_REPLICAS if acks == -1 and self.min_isr.get(key, 1) > 1 else NONE
        if not self.lease_valid():
            return NOT_LEADER_OR_FOLLOWER
        if acks == -1 and len(ls.isr) < self.min_isr.get(key, 1):
            return NOT_ENOUGH_REPLICAS
        return NONE

    def lease_valid(self) -> bool:
        """False once this broker's coordinator session may have expired (it was paused or cut
        off): the coordinator may have elected another leader, so nothing may be acknowledged."""
        return self.state.coordinator.lease_valid()

    def appended(self, key: Key) -> None:
        """The leader appended: with no follower in the ISR the high watermark moves now."""
        ls = self.leading.get(key)
        if ls is not None:
            self._advance(key, ls, self.state.partitions[key])

    def acked(self, key: Key, offset: int, epoch: int | None = None) -> int | None:
        """acks=all without waiting: the answer when the high watermark is already past
        `offset` (an ISR of one, or followers that were quicker), None when it is not yet
        (then wait_for_replicas), so such a write is answered without a pass of the event loop.
        NOT_LEADER_OR_FOLLOWER once this broker no longer leads the partition, or leads it in
        another leader epoch than `epoch` (the one the write was appended in): the new leader may
        not have it. (A Produce pipelined behind one that failed so was answered as written after
        its partition moved, and librdkafka counted the failed batch acknowledged too: both lost.)"""
        plog = self.state.partitions.get(key)
        leader = self.state.leaders.get(key)
        if plog is None or leader is None or leader[0] != self.node_id or (epoch is not None and leader[1] != epoch):
            return NOT_LEADER_OR_FOLLOWER
        ls = self.leading.get(key)
        if ls is None:
            return NONE   # led here without followers: the ISR is this broker
        if epoch is not None and ls.leader_epoch != epoch:
            return NOT_LEADER_OR_FOLLOWER
        if plog.high_watermark <= offset:
            return None
        return self._acked_answer(key)

    async def wait_for_replicas(self, key: Key, offset: int, timeout_s: float, epoch: int | None = None) -> int:
        """acks=all: wait until the high watermark passes `offset` (every ISR member has it);
        see acked() for `epoch`."""
        code = self.acked(key, offset, epoch)
        if code is not None:
            return code
        code = await _wait(self._waiters, key, offset, timeout_s)
        if code != NONE:
            return code
        again = self.acked(key, offset, epoch)   # still leading, in the same epoch
        return NOT_LEADER_OR_FOLLOWER if again is None else again

    def _acked_answer(self, key: Key) -> int:
        """Once the ISR has a write: NONE unless this broker may no longer lead, or the ISR
        shrank below min.insync.replicas meanwhile (the maximal ISR, as Kafka's
        checkEnoughReplicasReachOffset: a member being added counts, one being removed too)."""
        ls = self.leading.get(key)
        if ls is None or not self.lease_valid():
            return NOT_LEADER_OR_FOLLOWER
        if len(ls.maximal_isr()) < self.min_isr.get(key, 1):
            return NOT_ENOUGH_REPLICAS_AFTER_APPEND
        return NONE

    def follower_fetch(self, key: Key, replica: int, fetch_offset: int, leader_epoch: int,
                       log_start: int = -1) -> int:
        """A follower's fetch reached us: record its progress; may move the high watermark and
        propose it back into the ISR, or complete a DeleteRecords. An error code if it fetches
        from the wrong epoch."""
        ls = self.leading.get(key)
        if ls is None:
            return NOT_LEADER_OR_FOLLOWER
        if leader_epoch >= 0 and leader_epoch < ls.leader_epoch:
            return FENCED_LEADER_EPOCH
        if leader_epoch > ls.leader_epoch:
            return UNKNOWN_LEADER_EPOCH
        if replica not in ls.followers:
            # not a replica (yet: a reassignment's target before this broker's metadata names it):
            # a fetch as a follower would read what the ISR does not have yet; as Kafka's
            # followerReplicaOrThrow, asked again once the epoch names it, or refused outright
            return UNKNOWN_LEADER_EPOCH if leader_epoch >= 0 else NOT_LEADER_OR_FOLLOWER
        plog = self.state.partitions[key]
        if fetch_offset > plog.log_end_offset:
            return NONE   # beyond our log end: the read answers OFFSET_OUT_OF_RANGE, no progress counted
        now = self._now_ms()
        ls.follower_fetched(replica, fetch_offset, plog.log_end_offset, now, log_start)
        self._advance(key, ls, plog)
        if key in self._deletions:
            self._complete_deletions(key)
        # one ISR change at a time, as Kafka's (isInflight): a change asked for whose outcome is
        # unknown (no answer) may be committed, and is asked again (tick) before any other; one
        # built over it from the committed ISR dropped its member from the maximal ISR, and the
        # high watermark ran ahead of a replica the coordinator could elect
        if key not in self._altering and ls.pending is None and replica not in ls.maximal_isr() \
                and self._eligible(replica, key):
            if replica in ls.to_expand(self.epoch_start(key)):
                self._propose(key, ls, tuple(ls.isr) + (replica,), "expand")
        return NONE

    def epoch_start(self, key: Key) -> int:
        """Where this broker's leader epoch of a replicated partition began in its log (Kafka's
        leaderEpochStartOffset); 0 for a partition it does not lead replicated."""
        ls = self.leading.get(key)
        if ls is None or ls.leader_epoch <= 0:
            return 0
        return max(self.state.partitions[key].replica.end_offset_for_epoch(ls.leader_epoch - 1)[1], 0)

    def _eligible(self, replica: int, key: Key | None = None) -> bool:
        """Whether a follower may be proposed into the ISR (Kafka's isReplicaIsrEligible): not
        one the coordinator fenced, which it refuses (INELIGIBLE_REPLICA) while the follower,
        cut off from the coordinator but not from this broker, fetches on: one ask per fetch;
        nor, for partition `key`, one whose broker reported that log offline (KIP-858)."""
        b = self.state.coordinator.broker(replica)
        if b is None or b.fenced:
            return False
        if key is not None and getattr(b, "offline", None):
            plog = self.state.partitions.get(key)
            topic_id = getattr(plog, "topic_id", None) if plog is not None else None
            if topic_id is not None and b.is_offline(topic_id, key[1]):
                return False
        return True

    def tick(self) -> None:
        """Periodic: followers that fell behind for longer than replica.lag.time.max.ms leave the ISR."""
        now = self._now_ms()
        for key, ls in list(self.leading.items()):
            if key in self._altering:
                continue
            if ls.pending is not None:   # a change asked for whose outcome is unknown: ask again
                self._propose(key, ls, ls.pending, "expand" if len(ls.pending) > len(ls.isr) else "shrink")
                continue
            plog = self.state.partitions.get(key)
            if plog is not None:   # a hold for a follower that stopped fetching ends with its lag
                self._advance(key, ls, plog)
            out = ls.to_shrink(now, self.replica_lag_ms, plog.log_end_offset if plog is not None else None)
            if out:
                self._propose(key, ls, tuple(r for r in ls.isr if r not in out), "shrink")

    def _advance(self, key: Key, ls: LeaderState, plog) -> None:
        if ls.advance_high_watermark(plog.log_end_offset, self._now_ms, self.replica_lag_ms, self._eligible, key):
            plog.replica.high_watermark = ls.high_watermark
            self._complete(key, plog.high_watermark)
            self.state.notifier.notify(key)

    def _complete(self, key: Key, hw: int) -> None:
        w = self._waiters.get(key)
        if not w:
            return
        for offset, fut in w:
            if offset < hw and not fut.done():
                fut.set_result(NONE)

    def _fail_waiters(self, key: Key, code: int) -> None:
        """Leadership here ended or changed epoch: acks=all and DeleteRecords waiters get `code`,
        and fetches long-polling the partition wake to check the leader epoch again and answer
        their error now (Kafka's completeDelayedFetchOrProduceRequests at a leader change), not
        read another epoch's data at their deadline."""
        for _o, fut in self._waiters.pop(key, []) + self._deletions.pop(key, []):
            if not fut.done():
                fut.set_result(code)
        self.state.notifier.notify(key)

    # ---- DeleteRecords ---------------------------------------------------------------------
    def low_watermark(self, key: Key) -> int:
        """The smallest log start offset of this partition's replicas on live brokers (its
        leader's alone when it is not replicated, or not led here)."""
        plog = self.state.partitions[key]
        ls = self.leading.get(key)
        if ls is None:
            return plog.log_start_offset
        live = {b.broker_id for b in self.state.coordinator.brokers() if not b.fenced}
        return ls.low_watermark(plog.log_start_offset, live)

    async def wait_for_log_start(self, key: Key, offset: int, timeout_s: float) -> int:
        """DeleteRecords on a replicated partition, as Kafka answers it: once every replica on a
        live broker has moved its log start to `offset` (followers learn the leader's from their
        fetches), so a deletion acknowledged is never undone by a failover. NONE, REQUEST_TIMED_OUT,
        or NOT_LEADER_OR_FOLLOWER when leadership moved meanwhile."""
        if key not in self.leading:
            return NOT_LEADER_OR_FOLLOWER
        if self.low_watermark(key) >= offset:
            return NONE
        return await _wait(self._deletions, key, offset, timeout_s)

    def _complete_deletions(self, key: Key) -> None:
        low = self.low_watermark(key)
        for offset, fut in self._deletions.get(key, []):
            if offset <= low and not fut.done():
                fut.set_result(NONE)

    def _propose(self, key: Key, ls: LeaderState, isr: tuple[int, ...], why: str) -> None:
        topic_id = self.topic_ids.get(key[0])
        if topic_id is None:
            return
        ls.pending = isr
        self._altering.add(key)
        task = asyncio.get_running_loop().create_task(self._alter(key, ls, isr, why, topic_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _alter(self, key: Key, ls: LeaderState, isr, why: str, topic_id) -> None:
        before = ls.isr
        try:
            code, after = await self.state.coordinator.alter_partition(
                self.node_id, topic_id, key[1], ls.leader_epoch, ls.partition_epoch, list(isr))
        except Exception as e:   # noqa: BLE001 - the coordinator is away: try again at the next tick
            log.info("ISR change of %s-%d not made: %s", key[0], key[1], e)
            code, after = -1, None
        finally:
            self._altering.discard(key)
        if self.leading.get(key) is not ls:
            return
        if code == NONE and after is not None:
            if after.partition_epoch >= ls.partition_epoch:
                ls.committed(tuple(after.isr), after.partition_epoch, self._now_ms())
                self.emit(f"isr-{why}", {"topic": key[0], "partition": key[1], "from": list(before),
                                         "to": list(after.isr)})
            # else the metadata brought a later ISR before this answer (Kafka ignores an answer
            # older than the partition epoch it has): it stays
        elif (after is not None and after.leader_epoch == ls.leader_epoch
              and after.partition_epoch > ls.partition_epoch):
            # refused because the ISR changed meanwhile (an earlier ask whose answer was lost)
            ls.committed(tuple(after.isr), after.partition_epoch, self._now_ms())
        elif code != -1:
            ls.pending = None
        # no answer: the coordinator may have made the change, so the larger ISR stays trusted
        # (pending) until an answer or the metadata tells; tick() asks again
        plog = self.state.partitions.get(key)
        if plog is not None:
            self._advance(key, ls, plog)

    # ---- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self.closed = True
        for f in self.fetchers.values():
            f.stop()
        self.fetchers.clear()
        for key in list(self._waiters):
            self._fail_waiters(key, NOT_LEADER_OR_FOLLOWER)
        for t in self._tasks:
            t.cancel()


async def _wait(table: dict[Key, list[tuple[int, asyncio.Future]]], key: Key, offset: int, timeout_s: float) -> int:
    """Wait in `table` until whoever completes it answers for `offset`: its code, or
    REQUEST_TIMED_OUT after timeout_s."""
    fut = asyncio.get_running_loop().create_future()
    table.setdefault(key, []).append((offset, fut))
    try:
        return await asyncio.wait_for(fut, max(timeout_s, 0.001))
    except asyncio.TimeoutError:
        return REQUEST_TIMED_OUT
    finally:
        w = table.get(key)
        if w is not None:
            w[:] = [(o, f) for o, f in w if f is not fut]
            if not w:
                del table[key]


def _int(text: Any, default: int) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        return default
