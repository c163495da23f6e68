"""A follower's fetcher: one connection to one leader for every partition this broker follows
there. Before fetching a partition in a new leader epoch it asks the leader where that epoch's
log ends (OffsetForLeaderEpoch) and truncates what the leader does not have (KIP-101/KIP-279);
then it fetches from its log end and appends the leader's batches as they are."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from sandbox.client.async_connection import AsyncConnection, ExchangeFailed
from sandbox.log import CorruptRecordError, InvalidRecordError
from sandbox.client.connection import BadReply, WrongCorrelation
from sandbox.protocol import DecodeError, build, request_class
from sandbox.protocol.fast_fetch import FetchPartition, decode_fetch_response, encode_fetch_request
from sandbox.protocol.errors import NONE, OFFSET_OUT_OF_RANGE

from .. import storage

if TYPE_CHECKING:
    from .manager import ReplicaManager

log = logging.getLogger("sandbox.broker")

Key = tuple[str, int]
FETCH_VERSION = 12
EPOCH_VERSION = 4
MAX_WAIT_MS = 500
PARTITION_MAX_BYTES = 1 << 20
MAX_BYTES = 16 << 20
BACKOFF_S = 0.2
# a cut stopped by a file another program holds (Windows) is tried again after this long: each
# try may wait a fraction of a second on the loop for the file, which must not happen every round
HELD_RETRY_S = 1.0
# while a bulk load streams in (the last fetch brought BULK_BYTES or more) a follower asks for
# BULK_MIN_BYTES or whatever comes within BULK_WAIT_MS: half the fetches, and their CPU, for at most
# that much more on an acks=all write; half a partition's cap, so a follower catching up (every
# answer near the cap) is answered at once rather than after the wait
BULK_BYTES = 128 << 10
BULK_MIN_BYTES = PARTITION_MAX_BYTES // 2
BULK_WAIT_MS = 10
INTERNAL_LISTENERS = ("INTERNAL", "REPLICATION")   # preferred for broker-to-broker traffic


def broker_address(state: Any, broker_id: int) -> tuple[str, int] | None:
    """Where this broker reaches another one (its internal listener if it has one)."""
    info = next((b for b in state.coordinator.brokers() if b.broker_id == broker_id), None)
    if info is None:
        return None
    name = next((n for n in INTERNAL_LISTENERS if n in info.listeners), None)
    return info.address(name)


def _decode_fetch(frame: bytearray | memoryview, correlation_id: int) -> Any:
    """The leader's Fetch answer, its record sets left as views into `frame`; BadReply if it is
    not the answer to the request sent as `correlation_id`."""
    try:
        got, resp = decode_fetch_response(frame, FETCH_VERSION)
    except DecodeError as e:
        raise BadReply(f"a Fetch response v{FETCH_VERSION} that cannot be decoded ({e})") from None
    if got != correlation_id:
        raise WrongCorrelation(got, correlation_id)
    return resp


UNREACHABLE_WARN_S = 15.0   # a leader silent this long is reported (a restart takes a few seconds)


class ReplicaFetcher:
    def __init__(self, manager: ReplicaManager, leader: int) -> None:
        self.manager = manager
        self.leader = leader
        self.partitions: dict[Key, int] = {}      # key -> leader epoch it follows in
        self._truncate: set[Key] = set()          # not fetched until truncated for its epoch
        self._held_until: dict[Key, float] = {}   # a cut a held file stopped: not tried again before
        # answered with an error (not the leader yet, a full disk): not fetched again before then,
        # while the others go on (Kafka's fetcher delays the failed partitions only)
        self._delayed_until: dict[Key, float] = {}
        self._conn: AsyncConnection | None = None
        self._task: asyncio.Task | None = None
        self._last_bytes = 0                      # what the previous fetch brought

    def add(self, key: Key, epoch: int) -> None:
        self.partitions[key] = epoch
        self._truncate.add(key)
        self._delayed_until.pop(key, None)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def remove(self, key: Key) -> None:
        self.partitions.pop(key, None)
        self._truncate.discard(key)
        self._held_until.pop(key, None)
        self._delayed_until.pop(key, None)

    def stop(self) -> None:
        self.partitions.clear()
        if self._task is not None:
            self._task.cancel()
        if self._conn is not None:
            self._conn.close()

    # ---- the loop --------------------------------------------------------------------------
    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()   # time.monotonic(), or a simulation's clock

    def _address(self) -> tuple[str, int] | None:
        return broker_address(self.manager.state, self.leader)

    async def _run(self) -> None:
        state = self.manager.state
        addr: tuple[str, int] | None = None
        resolved = 0.0
        failing_since: float | None = None   # the leader has not answered since then
        warned = 0.0
        while self.partitions and not self.manager.closed:
            # the leader's address from the metadata: looked up again for a new connection and
            # once a second (a lookup per fetch cost a follower 4% of its CPU)
            now = self._now()
            if addr is None or self._conn is None or not self._conn.connected or now - resolved >= 1.0:
                addr, resolved = self._address(), now
            if addr is None:
                await asyncio.sleep(BACKOFF_S)
                continue
            if self._conn is None or (self._conn.host, self._conn.port) != addr:
                if self._conn is not None:
                    self._conn.close()
                self._conn = self.manager.connect(addr[0], addr[1], f"replica-{state.node_id}")
            try:
                if self._truncate:
                    await self._truncate_diverged()
                if self.partitions.keys() - self._truncate:
                    await self._fetch()
                else:
                    await asyncio.sleep(BACKOFF_S)
                failing_since = None
            except asyncio.CancelledError:
                raise
            except ExchangeFailed as e:   # the leader is down or slow: the metadata will move on
                log.debug("fetch from broker %d: %s", self.leader, e)
                now = self._now()
                failing_since = failing_since or now
                # a leader that never answers is most often an address this broker cannot reach
                # (the first listener's advertised host is what followers connect to): say so, as
                # Kafka's fetcher warns, once it lasts longer than a restart would, then each minute
                if now - failing_since >= UNREACHABLE_WARN_S and now - warned >= 60.0:
                    warned = now
                    log.warning("cannot fetch from broker %d at %s:%d for %.0f s (%s): its partitions here "
                                "fall out of sync; check that this broker can reach the address broker %d "
                                "advertises on its first listener", self.leader, addr[0], addr[1],
                                now - failing_since, e, self.leader)
                await asyncio.sleep(BACKOFF_S)
            except Exception:   # noqa: BLE001 - never let one bad answer stop replication
                log.exception("replica fetcher for leader %d", self.leader)
                await asyncio.sleep(BACKOFF_S)

    async def _truncate_diverged(self) -> None:
        """Ask the leader where our latest epoch ends there; cut our log to that point."""
        state = self.manager.state
        asked: dict[Key, tuple[int, int]] = {}
        topics: dict[str, list[dict]] = {}
        now = self._now()
        for key in list(self._truncate):
            if self._held_until.get(key, 0.0) > now:
                continue
            plog = state.partitions.get(key)
            epoch = self.partitions.get(key)
            if plog is None or epoch is None:
                self._truncate.discard(key)
                continue
            try:
                mine = plog.replica.latest_epoch   # a log not opened yet is opened here
            except PermissionError as e:   # Windows: a file of it another program holds
                self._not_opened(key, e)
                continue
            if mine < 0:   # nothing written under any epoch: nothing to disagree about
                self._truncate.discard(key)
                continue
            if mine > epoch:
                # our epochs are newer than the leader's: the coordinator's journal was destroyed
                # and epochs count from 0 again; the history is void, so keep what we have as this
                # epoch's and let the leader's log end decide (as its own restarted cache does)
                plog.replica.restart_epochs(epoch)
                mine = epoch
            asked[key] = (epoch, mine)
            topics.setdefault(key[0], []).append(
                {"partition": key[1], "current_leader_epoch": epoch, "leader_epoch": mine})
        if not topics:
            return
        body = build(request_class(23, EPOCH_VERSION), {
            "replica_id": state.node_id,
            "topics": [{"topic": t, "partitions": ps} for t, ps in topics.items()]})
        resp = await self._conn.request(body, 5.0)
        for t in resp.topics:
            for p in t.partitions:
                key = (t.topic, p.partition)
                plog = state.partitions.get(key)
                if key not in asked or plog is None or self.partitions.get(key) != asked[key][0]:
                    continue
                if int(p.error_code) != NONE:
                    continue   # the leader has not caught up with the metadata yet: ask again
                leo = plog.log_end_offset
                leader_epoch, end = int(p.leader_epoch), int(p.end_offset)
                done = True
                if leader_epoch < 0 or end < 0:
                    target = min(plog.high_watermark, leo)    # the leader knows none of our epochs
                elif leader_epoch == asked[key][1]:
                    target = min(end, leo)
                else:   # the leader knows an older epoch only (KIP-279)
                    mine, mine_end = plog.replica.end_offset_for_epoch(leader_epoch)
                    if mine < 0:     # we hold nothing of that epoch or an older one
                        target = min(end, leo)
                    elif mine == leader_epoch:   # cut where both agree it ended
                        target = min(end, mine_end, leo)
                    else:
                        # we never had the epoch the leader answered: our records after our own
                        # older epoch `mine` were never the leader's, whatever their offsets; cut
                        # to where `mine` ended here and ask again about `mine` (cut at the
                        # leader's answer instead, another leader's records below it were kept)
                        target, done = min(mine_end, leo), False
                if target < leo:
                    log.info("%s-%d: truncating from %d to %d to follow broker %d (epoch %d)",
                             key[0], key[1], leo, target, self.leader, asked[key][0])
                    try:
                        plog.truncate_to(target)
                    except PermissionError as e:   # Windows: a segment held by another program
                        log.warning("%s-%d: truncation stopped at %d (%s); asked again", key[0], key[1],
                                    plog.log_end_offset, e)
                        self._held_until[key] = self._now() + HELD_RETRY_S
                        continue   # still to truncate: nothing fetched for it meanwhile
                    self._held_until.pop(key, None)
                    self.manager.emit("truncated", {"topic": key[0], "partition": key[1],
                                                    "from": leo, "to": plog.log_end_offset})
                if done:
                    self._truncate.discard(key)
                else:   # epochs that began at the cut and wrote nothing go too: the next round asks older
                    plog.replica.forget_epochs_from(target)

    def _not_opened(self, key: Key, e: OSError) -> None:
        """A log whose first open (it is opened at its first use) met a file another program
        holds: nothing is fetched for it for a second, then it is opened again; it counts as
        unopened meanwhile (ReplicaManager.unopened)."""
        if key not in self.manager.unopened:   # one line, not one a retry
            log.warning("%s-%d: its log cannot be opened yet (%s); tried again in %g s", key[0], key[1], e,
                        HELD_RETRY_S)
        self._held_until[key] = self._now() + HELD_RETRY_S
        # reported offline to the coordinator from the next heartbeat on (KIP-858), and opened
        # again by BrokerState.retry_unopened, which takes the roles up again once it opens
        self.manager.unopened.add(key)

    async def _fetch(self) -> None:
        state = self.manager.state
        topics: dict[str, list[FetchPartition]] = {}
        asked: dict[Key, tuple[int, int]] = {}   # fetch offset, leader epoch asked in
        now = self._now()
        waits: list[float] = []   # when a partition skipped for now may be asked again
        for key, epoch in self.partitions.items():
            plog = state.partitions.get(key)
            if key in self._truncate or plog is None:
                continue
            until = max(self._held_until.get(key, 0.0), self._delayed_until.get(key, 0.0))
            if until > now:
                waits.append(until)
                continue
            try:
                leo = plog.log_end_offset   # a log not opened yet is opened here
                asked[key] = (leo, epoch)
            except PermissionError as e:   # Windows: a file of it another program holds
                self._not_opened(key, e)
                continue
            topics.setdefault(key[0], []).append(FetchPartition(
                key[1], leo, PARTITION_MAX_BYTES, epoch, plog.log_start_offset))
        if not asked:   # every partition waits: nothing to ask the leader for until the first is due
            await asyncio.sleep(min([BACKOFF_S] + [w - now for w in waits]))
            return
        node = state.node_id
        bulk = self._last_bytes >= BULK_BYTES
        min_bytes, max_wait = (BULK_MIN_BYTES, BULK_WAIT_MS) if bulk else (1, MAX_WAIT_MS)
        if waits:   # a delayed partition is asked again when due, not after a full long poll
            max_wait = min(max_wait, max(0, int((min(waits) - now) * 1000)))
        resp = await self._conn.call(
            lambda corr, client_id: encode_fetch_request(
                FETCH_VERSION, corr, client_id, replica_id=node, max_wait_ms=max_wait, min_bytes=min_bytes,
                max_bytes=MAX_BYTES, topics=topics),
            _decode_fetch, MAX_WAIT_MS / 1000 + 10.0)
        got = 0
        for t in resp.responses:
            for p in t.partitions:
                key = (t.topic, p.partition_index)
                if key not in asked:
                    continue
                if p.records is not None:
                    got += len(p.records)
                if self._apply(key, p, *asked[key]):
                    self._delayed_until.pop(key, None)
                elif key in self.partitions:
                    self._delayed_until[key] = self._now() + BACKOFF_S
        self._last_bytes = got

    def _apply(self, key: Key, p: Any, fetch_offset: int, epoch: int | None = None) -> bool:
        """Append one partition's answer to a fetch asked in leader epoch `epoch`; False if that
        partition needs a pause before it is asked again."""
        plog = self.manager.state.partitions.get(key)
        if plog is None or key not in self.partitions or plog.log_end_offset != fetch_offset:
            return True   # dropped or truncated meanwhile: the next round asks afresh
        if key in self._truncate or (epoch is not None and self.partitions[key] != epoch):
            # asked before a leader change (the leader left and came back while it was in
            # flight): an older epoch's records on top of what the new epoch's truncation keeps
            # would be kept for good (Kafka's fetcher drops such an answer too)
            return True
        code = int(p.error_code)
        if code == OFFSET_OUT_OF_RANGE:
            try:
                if plog.log_end_offset < int(p.log_start_offset):
                    plog.replica.reset_to(int(p.log_start_offset))   # the leader no longer has what we lack
                elif 0 <= int(p.high_watermark) < plog.log_end_offset and key not in self._truncate:
                    # beyond the leader's log end although the epochs agreed: cut to what the leader
                    # has committed and fetch the rest from it
                    plog.truncate_to(int(p.high_watermark))
                else:
                    self._truncate.add(key)
            except PermissionError as e:
                # Windows: a segment held by another program stopped the cut part way; nothing is
                # fetched for the partition until the leader's epochs have said where to cut again
                log.warning("%s-%d: cut stopped at %d (%s); asked again", key[0], key[1], plog.log_end_offset, e)
                self._truncate.add(key)
                self._held_until[key] = self._now() + HELD_RETRY_S
            return True
        if code != NONE:
            return False   # not the leader (yet/any more), wrong epoch: the metadata will tell
        if p.records:
            before = plog.log_end_offset
            try:
                plog.replica.append(p.records)
            except (CorruptRecordError, InvalidRecordError) as e:
                log.warning("%s-%d: leader %d sent batches we cannot append (%s); checking for "
                            "divergence", key[0], key[1], self.leader, e)
                self._truncate.add(key)
                return False
            except PermissionError as e:   # Windows: a file another program holds (its epoch file after a cut)
                log.warning("%s-%d: could not append what broker %d sent (%s); asked again in %g s", key[0],
                            key[1], self.leader, e, HELD_RETRY_S)
                # not fetched for a second (each try may wait on the loop for the file): the
                # truncation round, once due, finds nothing to cut and lets it fetch again
                self._truncate.add(key)
                self._held_until[key] = self._now() + HELD_RETRY_S
                return False
            except OSError as e:   # a full or failing disk: nothing was appended; asked again after a pause
                if not storage.is_storage_error(e):
                    raise
                storage.failed(self.manager.state, plog.directory, e)
                return False
            if plog.log_end_offset != before:   # something was written (not only a partial batch)
                storage.after_append(self.manager.state, plog)
        plog.replica.high_watermark = min(int(p.high_watermark), plog.log_end_offset)
        if int(p.log_start_offset) > plog.log_start_offset:
            plog.replica.follow_log_start(int(p.log_start_offset))
        return True
