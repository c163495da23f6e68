"""Fetch (1), v4-v17: whole batches from the batch containing fetch_offset, as stored. From v13
topics are named by topic id (an unknown id gets UNKNOWN_TOPIC_ID).

Records travel as the log's LogSlices (read straight into the response buffer by the encoder),
so the reply must be encoded before the next await: the server does so right after handle().

Long-poll: if fewer than min_bytes are ready, wait (no busy loop) until an append to one of
the requested partitions wakes us or max_wait expires. A partition the client may not read
(TOPIC_AUTHORIZATION_FAILED) or whose topic id is unknown is answered with its error and does not
cut the long poll of the others short, as in Kafka (any other partition error answers at once).
Sessionless (session_id 0), which both librdkafka and the Java client accept; since no session is
ever handed out, an incremental request (session epoch other than 0 or -1) is answered
FETCH_SESSION_ID_NOT_FOUND, as Kafka's FetchManager answers an unknown session, and the client
starts over with a full one.

A consumer's current_leader_epoch is checked as Kafka checks it (older: FENCED_LEADER_EPOCH,
newer: UNKNOWN_LEADER_EPOCH). Consumers read up to the high watermark, or with isolation_level=1
(read_committed) up to the last stable offset, with the aborted transactions in what they read (producer id, first offset) so
they can skip their records. Every reply carries the real last stable offset. A follower broker
(replica id >= 0) reads up to the log end; its fetch offset tells the leader how far it has
replicated (replication/manager.py). Markers wake long-polls like any append.
"""

from __future__ import annotations

import asyncio

from sandbox.log import OffsetOutOfRangeError

from ..endpoints import add_leader_hints
from ..internal_topics import lookup_topic_id
from sandbox.coordinator.acls import CLUSTER, CLUSTER_ACTION, CLUSTER_NAME, READ, TOPIC
from sandbox.protocol.errors import (
    FETCH_SESSION_ID_NOT_FOUND, NONE, OFFSET_OUT_OF_RANGE, TOPIC_AUTHORIZATION_FAILED, UNKNOWN_TOPIC_ID,
)

# errors of partitions left out of the fetch (Kafka's "erroneous"): they do not end a long poll
_LEFT_OUT = (TOPIC_AUTHORIZATION_FAILED, UNKNOWN_TOPIC_ID)

READ_COMMITTED = 1   # isolation_level

API_KEY = 1
MIN_VERSION = 4
MAX_VERSION = 17


def _topic_names(state, request, version: int) -> list[str | None]:
    """The name of each requested topic (v13+: looked up by id; None for an unknown id)."""
    if version < 13:
        return [t.topic for t in request.topics]
    out = []
    for t in request.topics:
        info = lookup_topic_id(state, t.topic_id)
        out.append(info.name if info is not None else None)
    return out


def replica_of(request, version: int) -> int:
    """The fetching follower's broker id, or -1 for a consumer."""
    if version >= 15:
        rs = getattr(request, "replica_state", None)
        return int(rs.replica_id) if rs is not None else -1
    return int(getattr(request, "replica_id", -1))


def _record_followers(state, request, names: list[str | None], replica: int) -> dict:
    """A follower's fetch: its progress per partition; an error code for the ones it may not
    fetch (wrong leader epoch)."""
    errors = {}
    for t, name in zip(request.topics, names):
        if name is None:
            continue
        for p in t.partitions:
            code = state.replicas.follower_fetch((name, p.partition), replica, p.fetch_offset,
                                                 getattr(p, "current_leader_epoch", -1),
                                                 getattr(p, "log_start_offset", -1))
            if code != NONE:
                errors[(name, p.partition)] = code
    return errors


def _read_all(state, request, names: list[str | None], replica: int = -1,
              refused: dict | None = None) -> tuple[list[dict], int, bool]:
    """The answer's topics, the record bytes in it, and whether some partition got an error
    (then, as in Kafka, it is answered at once, not after a long poll)."""
    errored = False
    asked = 0   # partitions neither refused nor unknown
    committed = replica < 0 and getattr(request, "isolation_level", 0) == READ_COMMITTED
    budget = request.max_bytes if request.max_bytes > 0 else 52428800
    total = 0
    responses = []
    first = True
    for t, name in zip(request.topics, names):
        parts = []
        for p in t.partitions:
            entry = {"partition_index": p.partition, "error_code": NONE, "high_watermark": -1,
                     "last_stable_offset": -1, "log_start_offset": -1, "aborted_transactions": None,
                     "preferred_read_replica": -1, "records": b""}
            plog, code = state.led_log(name, p.partition) if name is not None else (None, UNKNOWN_TOPIC_ID)
            if refused and (name, p.partition) in refused:
                plog, code = None, refused[(name, p.partition)]
            elif plog is not None:
                # a fetch sent before a leader epoch change must not come back with records:
                # librdkafka, validating its position against the old epoch meanwhile, takes
                # records past that epoch's end for a truncation, seeks back and drops what it
                # had fetched and not yet handed out; and a follower's long poll (its epoch checked
                # when it came in, _record_followers) must not be answered with another epoch's
                # data after this broker followed and led again meanwhile (Kafka's DelayedFetch
                # checks the epoch at each completion)
                code = state.leader_epoch_error(name, p.partition, getattr(p, "current_leader_epoch", -1))
                if code != NONE:
                    plog = None
            if plog is None:
                entry["error_code"] = code
                errored |= code not in _LEFT_OUT
                asked += code not in _LEFT_OUT
                parts.append(entry)
                continue
            asked += 1
            hw = plog.high_watermark
            lso = plog.last_stable_offset
            entry["high_watermark"] = hw
            entry["last_stable_offset"] = lso
            entry["log_start_offset"] = plog.log_start_offset
            if committed:
                entry["aborted_transactions"] = []
            limit = min(p.partition_max_bytes, budget - total)
            # at the log end there is nothing to read (read() answers so, at the cost of a slice
            # object: an idle follower asks for every partition it follows twice a second)
            if p.fetch_offset != plog.log_end_offset and (limit > 0 or first):
                upper = lso if committed else hw
                try:
                    # as Kafka (KIP-74): only the first partition with data may go over the
                    # limits, by its first batch, so a consumer always makes progress; later
                    # ones get only whole batches that fit in what is left
                    data = plog.read(p.fetch_offset, max(limit, 1),
                                     max_offset=upper if replica < 0 else None, min_one=first)
                except OffsetOutOfRangeError:
                    entry["error_code"] = OFFSET_OUT_OF_RANGE
                    errored = True
                    data = b""
                if data:
                    entry["records"] = data
                    total += len(data)
                    first = False
                    if committed:
                        entry["aborted_transactions"] = [
                            {"producer_id": pid, "first_offset": first_offset}
                            for pid, first_offset in plog.aborted_transactions(p.fetch_offset, upper)]
            parts.append(entry)
        responses.append({"topic": name, "topic_id": getattr(t, "topic_id", None), "partitions": parts})
    return responses, total, errored or (asked == 0 and any(r["partitions"] for r in responses))


async def handle(ctx, request) -> dict:
    """The answer; from v16 a partition this broker does not lead names its leader (KIP-951)."""
    out = await _handle(ctx, request)
    if ctx.api_version >= 16:
        add_leader_hints(ctx.state, ctx.listener, out, "responses", "partitions", "partition_index")
    return out


async def _handle(ctx, request) -> dict:
    state = ctx.state
    if getattr(request, "session_epoch", -1) not in (0, -1):   # incremental: no session was handed out
        return {"throttle_time": 0, "error_code": FETCH_SESSION_ID_NOT_FOUND,
                "session_id": int(getattr(request, "session_id", 0)), "responses": []}
    names = _topic_names(state, request, ctx.api_version)
    replica = replica_of(request, ctx.api_version)
    if ctx.restricted:   # ACLs: a follower needs CLUSTER_ACTION, a consumer READ on each topic
        if replica >= 0 and not ctx.allowed(CLUSTER_ACTION, CLUSTER, CLUSTER_NAME):   # every partition refused
            refused = {(name, p.partition): TOPIC_AUTHORIZATION_FAILED for t, name in zip(request.topics, names)
                       for p in t.partitions}
            return await _serve(ctx, request, names, -1, refused)
        if replica < 0:
            refused = {(name, p.partition): TOPIC_AUTHORIZATION_FAILED for t, name in zip(request.topics, names)
                       if name is not None and not ctx.allowed(READ, TOPIC, name) for p in t.partitions}
            return await _serve(ctx, request, names, replica, refused or None)
    refused = _record_followers(state, request, names, replica) if replica >= 0 else None
    return await _serve(ctx, request, names, replica, refused)


async def _serve(ctx, request, names, replica, refused) -> dict:
    state = ctx.state
    responses, total, errored = _read_all(state, request, names, replica, refused)
    wait_s = request.max_wait.total_seconds()
    min_bytes = max(request.min_bytes, 1)
    # as Kafka: a partition's error (out of range, not led here, a leader epoch that does not
    # match) is answered at once; a long poll would hold a failover or an offset reset back by
    # the client's whole fetch.wait.max.ms every round
    if total < min_bytes and wait_s > 0 and not errored:
        keys = [(name, p.partition) for t, name in zip(request.topics, names) if name is not None
                for p in t.partitions]
        loop = asyncio.get_running_loop()   # its clock is time.monotonic (a simulation's: virtual)
        deadline = loop.time() + wait_s
        while total < min_bytes and not errored:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            fut = state.notifier.waiter(keys)
            try:
                await asyncio.wait_for(fut, remaining)
            except asyncio.TimeoutError:
                pass
            finally:
                state.notifier.discard(keys, fut)
            responses, total, errored = _read_all(state, request, names, replica, refused)
    return {"throttle_time": 0, "error_code": NONE, "session_id": 0, "responses": responses}
