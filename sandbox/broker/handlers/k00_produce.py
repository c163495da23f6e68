"""Produce (0), v3-v12 (v12 changes only transactions, KIP-890): record batch v2 appended as
opaque bytes.

Per partition: check magic, CRC and size per batch (never decompress), stamp base offsets,
append in one write. Transactional batches (KIP-98) need the request's transactional_id, as Kafka's
ProduceRequest.hasTransactionalRecords check wants (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED on
every partition) and a producer id; the log keeps their transaction open until its marker. Only a compacted topic looks inside (decompressing if need be): a record
without a key is refused there with INVALID_RECORD, as Kafka does. Idempotent producers get
duplicates answered with the original offsets.
acks=0 gets no response; acks=1 is answered after the leader's append. acks=all on a replicated
partition is refused with NOT_ENOUGH_REPLICAS while the ISR is smaller than min.insync.replicas,
and otherwise answered once every ISR member has the batch (the high watermark passed it), or
REQUEST_TIMED_OUT after the request's timeout; the handler waits without blocking the loop.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time

from sandbox.log import (
    CorruptRecordError,
    InvalidProducerEpochError,
    InvalidRecordError,
    InvalidTxnStateError,
    OutOfOrderSequenceError,
    RecordTooLargeError,
    validate_batches,
)

from sandbox.log.batch import ATTR_TRANSACTIONAL, HEADER_SIZE, parse_header
from ..records import first_keyless_record
from ..produce_checks import batches_error, keyless_error, partition_error, timestamp_error
from ..internal_topics import OFFSETS_TOPIC, TXN_TOPIC
from .. import storage
from ..endpoints import add_leader_hints
from ..storage import STORAGE_ERRNOS
from ..transactions.verifier import refusal
from sandbox.protocol.errors import (
    CORRUPT_MESSAGE, INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE, NOT_ENOUGH_REPLICAS, INVALID_RECORD, INVALID_REQUIRED_ACKS, INVALID_TOPIC_EXCEPTION,
    KAFKA_STORAGE_ERROR, MESSAGE_TOO_LARGE, NONE, NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    NOT_LEADER_OR_FOLLOWER,
    OUT_OF_ORDER_SEQUENCE_NUMBER, TOPIC_AUTHORIZATION_FAILED, TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
)
from sandbox.coordinator.acls import TOPIC, TRANSACTIONAL_ID, WRITE

API_KEY = 0
MIN_VERSION = 3
# Advertised from v0, as Apache Kafka 4.0 does (KAFKA-18659): librdkafka up to 2.8 silently
# stops compressing gzip/snappy/lz4 when the broker's Produce range does not start at 0.
# Requests below v3 are still refused (the connection is closed with a log line).
ADVERTISED_MIN_VERSION = 0
MAX_VERSION = 12

log = logging.getLogger("sandbox.broker")


_error = partition_error


def has_transactional_batch(records) -> bool:
    """Any batch with the transactional attribute (a look at each batch header, no parsing)."""
    if not records:
        return False
    mv = memoryview(records)
    pos, n = 0, len(mv)
    while pos + 23 <= n:
        if mv[pos + 22] & ATTR_TRANSACTIONAL:   # attributes: int16 at 21, the flag in its low byte
            return True
        length = int.from_bytes(mv[pos + 8:pos + 12], "big", signed=True)
        if length <= 0:   # garbage: validate_batches refuses it later
            return False
        pos += 12 + length
    return False


# a transactional write to a partition its transaction does not hold (KIP-890 part 1): Produce
# v11+ understands TRANSACTION_ABORTABLE, older versions get INVALID_TXN_STATE, as Kafka answers
ABORTABLE_FROM = 11


def _verification_error(code: int, api_version: int) -> int:
    """What a Produce answers for a partition its transaction's coordinator did not confirm: a
    coordinator moving or busy is NOT_ENOUGH_REPLICAS (retried), as Kafka's ReplicaManager answers."""
    return refusal(code, NOT_ENOUGH_REPLICAS, api_version >= ABORTABLE_FROM)


def _unverified(ctx, txn_id: str | None, topic: str, index: int, h) -> int:
    """NONE, or why this broker's transaction coordinator says the producer's transaction does not
    hold this partition (a late or zombie write that would open a transaction no marker ever
    ends). `txn_id` is given only where this broker coordinates the transactional id (handle()
    asks once per request); elsewhere the coordinator's broker is asked before the append
    (_to_verify, _verified)."""
    if txn_id is None or not h.is_transactional:
        return NONE
    code, per = ctx.state.txns.verify(txn_id, h.producer_id, h.producer_epoch, [(topic, index)])
    code = per.get((topic, index), NONE) if code == NONE else code
    # CONCURRENT_TRANSACTIONS (the transaction is ending) is retried by the producer, as Kafka
    # answers it: by then the partition is outside any transaction and the retry is refused
    return NONE if code == NONE else _verification_error(code, ctx.api_version)


def _first_header(records):
    """The first batch's header (its fields unchecked: garbage is refused by the append), or None."""
    return parse_header(records, 0) if records is not None and len(records) >= HEADER_SIZE else None


def _to_verify(ctx, request, denied=()) -> tuple[int, int, set] | None:
    """Where another broker coordinates the request's transactional id (or this one is still
    loading it; handle() has checked that this one does not): (producer id, epoch, the
    partitions led here whose transactional batches would open a transaction there), else None.
    A partition where the producer's transaction is
    already open needs no check (Kafka's verification guard does the same), unless an earlier
    request of the producer to it is still held (TxnVerifier.held: it must be appended first). Without a
    __transaction_state topic no coordinator ever began a transaction to check against (a real
    producer's InitProducerId creates it first): such a write is taken as before KIP-890."""
    if ctx.state.txns.store.coordinator_for(request.transactional_id) is None:
        return None
    producer, parts = None, set()
    for td in request.topic_data:
        if td.name in (OFFSETS_TOPIC, TXN_TOPIC) or td.name in denied:   # refused topics: never verified
            continue
        for pd in td.partition_data:
            h = _first_header(pd.records)
            if h is None or not h.is_transactional or h.producer_id < 0:
                continue
            plog, _code = ctx.state.led_log(td.name, pd.index)
            if plog is None or (plog.in_transaction(h.producer_id, h.producer_epoch)
                                and not ctx.state.txns.verifier.held(td.name, pd.index, h.producer_id)):
                continue
            producer = (h.producer_id, h.producer_epoch)
            parts.add((td.name, pd.index))
    return (*producer, parts) if parts else None


async def _verified(ctx, request, responses: list[dict], producer_id: int, producer_epoch: int,
                    parts: set) -> dict | None:
    """The partitions held back for the coordinator's answer appended (or refused), then answered
    as handle() answers. Order within a partition holds: a Produce pipelined behind this one
    (server.Connection) is appended at once only where it needs no check, so not to a partition
    held here (the producer's transaction is not open there yet, or is open but by a held request
    that ran before it: TxnVerifier.held); one that needs a check is this same kind of coroutine,
    which the connection starts only after this one has answered."""
    codes = await ctx.state.txns.verifier.verify(request.transactional_id, producer_id, producer_epoch,
                                                 sorted(parts))
    for td in responses:
        prs = td["partition_responses"]
        for i, pr in enumerate(prs):
            if "_verify" not in pr:
                continue
            code = codes.get((td["name"], pr["index"]), NONE)
            prs[i] = _append(ctx, td["name"], pr["index"], pr["_verify"], request.acks) if code == NONE else \
                _error(pr["index"], _verification_error(code, ctx.api_version),
                       f"{td['name']}-{pr['index']} is not part of the producer's ongoing transaction "
                       f"(its coordinator answered error {code})")
    out = _answer(ctx, request, responses)
    return await out if asyncio.iscoroutine(out) else out


#: how long a refused idempotent batch is remembered: the race it covers lasts a leadership change
#: (seconds); kept short because, were that batch acknowledged elsewhere and then lost (an unclean
#: election), the producer's next batches would be answered "not leader" this long, not out of order
REFUSED_MEMORY_S = 60.0
REFUSED_KEPT = 4096   # at most this many refused batches are remembered (the oldest go first)


def _note_refused(state, topic: str, index: int, records) -> None:
    """Remember an idempotent batch refused before it was appended (not the leader, unknown while a
    restore is under way, too few in sync, a full disk) by its producer, epoch and first sequence: see
    _refused_here. Oldest first in the dict, so forgetting costs nothing per refusal."""
    h = _first_header(records)
    if h is None or h.producer_id < 0 or h.base_sequence < 0 or h.is_control:
        return
    now = time.monotonic()
    refused = state.produce_refused
    key = (topic, index, h.producer_id, h.producer_epoch, h.base_sequence)
    refused.pop(key, None)   # refused again: it moves to the end
    refused[key] = now
    while refused:
        oldest = next(iter(refused))
        if len(refused) <= REFUSED_KEPT and now - refused[oldest] < REFUSED_MEMORY_S:
            break
        del refused[oldest]


def _refused_here(state, topic: str, index: int, headers, expected: int | None) -> bool:
    """A batch past a gap whose first missing sequence is a batch this broker refused moments ago
    (it was not the leader then, and leads again now). Two requests of one producer were in flight
    across the change: the first refused, the second arriving after it. Kafka answers the second
    OUT_OF_ORDER_SEQUENCE_NUMBER; librdkafka takes that for lost data and bumps its producer epoch,
    which sends again, under new sequences, records other partitions wrote but had not answered:
    duplicates (the fault campaign, a destroyed coordinator journal put back). Answered
    NOT_LEADER_OR_FOLLOWER instead, retriable and not persisted, so the client sends the refused
    batch first and this one after it, as Java's producer does on its own."""
    h = next((h for h in headers if h.producer_id >= 0 and h.base_sequence >= 0), None)
    if h is None or expected is None:
        return False
    when = state.produce_refused.get((topic, index, h.producer_id, h.producer_epoch, expected))
    return when is not None and time.monotonic() - when < REFUSED_MEMORY_S


def _append(ctx, topic: str, index: int, records, acks: int, txn_id: str | None = None) -> dict:
    state = ctx.state
    if topic in (OFFSETS_TOPIC, TXN_TOPIC):   # written by the coordinators only, as in Kafka
        return _error(index, INVALID_TOPIC_EXCEPTION, f"Cannot append to internal topic {topic}")
    plog, code = state.led_log(topic, index)
    if plog is None:
        _note_refused(state, topic, index, records)
        return _error(index, code)
    version = ctx.api_version
    if not records:   # Kafka's ProduceRequest.validateRecords (v3+), else the log's own refusal
        return _error(index, INVALID_RECORD, f"Produce requests with version {version} must have at least one "
                                             f"record batch per partition") if version >= 3 else \
            _error(index, CORRUPT_MESSAGE, "empty records")
    replicated = state.replicas.replicated((topic, index))
    code = state.replicas.check_produce((topic, index), acks)
    if code != NONE:
        _note_refused(state, topic, index, records)
        return _error(index, code)
    try:
        headers = validate_batches(records, plog.config.max_message_bytes)
        refused = batches_error(index, version, headers)
        if refused is not None:
            return refused
        code = _unverified(ctx, txn_id, topic, index, headers[0]) if headers else NONE
        if code != NONE:
            return _error(index, code, f"{topic}-{index} is not part of the producer's ongoing transaction")
        try:   # the records themselves, read only for these checks (decompressed when they are)
            if not plog.config.log_append_time and (late := timestamp_error(state, topic, index, records, headers)):
                return late
            if plog.config.compacts:
                keyless = first_keyless_record(records, headers)
                if keyless is not None:
                    return keyless_error(topic, index, keyless)
        except (ValueError, IndexError, struct.error) as e:
            # a payload its codec cannot read, or records running past their batch: this
            # partition's answer, not a dropped connection (the client would send the whole
            # request again, and the request's other partitions were written already)
            raise CorruptRecordError(f"the batch's records cannot be read: {e}") from None
        # records is a view into this request's own buffer when it is writable: stamp it in place
        in_place = isinstance(records, memoryview) and not records.readonly
        info = plog.append(records, leader_epoch=state.leaders[(topic, index)][1], validated=headers,
                           in_place=in_place)
    except RecordTooLargeError as e:
        return _error(index, MESSAGE_TOO_LARGE, str(e))
    except CorruptRecordError as e:
        log.warning("rejected corrupt batch for %s-%d from %s: %s", topic, index, ctx.peer, e)
        return _error(index, CORRUPT_MESSAGE, str(e))
    except InvalidRecordError as e:
        return _error(index, INVALID_RECORD, str(e))
    except OutOfOrderSequenceError as e:
        if _refused_here(state, topic, index, headers, e.expected):
            log.info("%s-%d: a batch from %s is past sequence %s, refused here moments ago: answered "
                     "not leader, so the client sends that one first", topic, index, ctx.peer, e.expected)
            return _error(index, NOT_LEADER_OR_FOLLOWER, f"{e}: the batch at sequence {e.expected} was refused "
                                                         f"here moments ago; it is to be sent again first")
        log.warning("out-of-order sequence for %s-%d from %s: %s", topic, index, ctx.peer, e)
        return _error(index, OUT_OF_ORDER_SEQUENCE_NUMBER, str(e))
    except InvalidProducerEpochError as e:
        return _error(index, INVALID_PRODUCER_EPOCH, str(e))
    except InvalidTxnStateError as e:
        return _error(index, INVALID_TXN_STATE, str(e))
    except PermissionError as e:
        # Windows: a file of the partition another program holds for a moment (a virus scanner):
        # nothing was written; answered as a storage error, which clients retry, and remembered
        # as refused like a full disk's (below), so the batch behind it is not out of order
        _note_refused(state, topic, index, records)
        return _error(index, KAFKA_STORAGE_ERROR, f"cannot write to {plog.directory}: {e.strerror or e}")
    except OSError as e:
        if e.errno not in STORAGE_ERRNOS:
            raise
        # a full or failing disk: answered per partition (clients retry), never a dropped connection;
        # nothing was acknowledged and nothing already written is touched. Remembered as refused:
        # the producer's next batch, in flight behind this one, is answered "not leader" too, not
        # out of order, which made librdkafka bump its epoch over and over on a full disk and send
        # records written elsewhere again under new sequences (duplicates; chaos.py --disk-full)
        storage.failed(state, plog.directory, e)
        _note_refused(state, topic, index, records)
        return _error(index, KAFKA_STORAGE_ERROR, f"cannot write to {plog.directory}: {e.strerror or e}")
    if not info.duplicate:   # written (its flush may have failed: storage says so)
        storage.after_append(state, plog)
    if not info.duplicate:
        state.notifier.notify((topic, index))
    out = {"index": index, "error_code": NONE, "base_offset": info.first_offset,
           "log_append_time": info.log_append_time_ms, "log_start_offset": info.log_start_offset,
           "record_errors": (), "error_message": None}
    if replicated:
        state.replicas.appended((topic, index))
        if acks == -1:   # answered once the ISR has it, if this broker still leads in this epoch
            out["_wait"] = (info.last_offset, state.leaders[(topic, index)][1])   # (see _await_replicas)
    return out


async def _await_replicas(ctx, request, responses: list[dict]) -> dict:
    """acks=all: wait for every replicated partition's ISR, all partitions at once. A request
    pipelined behind another (see server.Connection) is often settled by the time it is
    awaited: then it is answered without suspending, in the same pass as the one ahead of it."""
    if not _acked_now(ctx, responses):
        timeout = request.timeout.total_seconds()
        waits = []
        for td in responses:
            for pr in td["partition_responses"]:
                if "_wait" in pr:
                    offset, epoch = pr.pop("_wait")
                    waits.append((pr, ctx.state.replicas.wait_for_replicas((td["name"], pr["index"]), offset,
                                                                           timeout, epoch)))
        if len(waits) == 1:
            codes = [await waits[0][1]]
        else:
            codes = await asyncio.gather(*(w for _pr, w in waits))
        for (pr, _w), code in zip(waits, codes):
            _settle(pr, code)
    return {"responses": responses, "throttle_time": 0}


def _settle(pr: dict, code: int) -> None:
    if code != NONE:
        pr["error_code"] = code
        if code != NOT_ENOUGH_REPLICAS_AFTER_APPEND:
            pr["base_offset"] = -1


def handle(ctx, request):
    """The answer; from v10 a partition this broker does not lead names its leader (KIP-951)."""
    out = _handle(ctx, request)
    if ctx.api_version < 10 or out is None:
        return out
    if asyncio.iscoroutine(out):
        return _hinted(ctx, out)
    return add_leader_hints(ctx.state, ctx.listener, out, "responses", "partition_responses", "index")


async def _hinted(ctx, pending):
    out = await pending
    return out if out is None else add_leader_hints(ctx.state, ctx.listener, out, "responses",
                                                    "partition_responses", "index")


def _handle(ctx, request) -> dict | None:
    acks = request.acks
    responses = []
    denied = _denied(ctx, request) if ctx.restricted else ()
    if denied is ALL_DENIED:
        for td in request.topic_data:
            responses.append({"name": td.name, "partition_responses": [
                _error(pd.index, TRANSACTIONAL_ID_AUTHORIZATION_FAILED) for pd in td.partition_data]})
    elif request.transactional_id is None and any(
            has_transactional_batch(pd.records) for td in request.topic_data for pd in td.partition_data):
        for td in request.topic_data:
            responses.append({"name": td.name, "partition_responses": [
                _error(pd.index, TRANSACTIONAL_ID_AUTHORIZATION_FAILED) for pd in td.partition_data]})
    elif acks not in (0, 1, -1):
        for td in request.topic_data:
            responses.append({"name": td.name, "partition_responses": [
                _error(pd.index, INVALID_REQUIRED_ACKS) for pd in td.partition_data]})
    else:
        # a transactional write is checked against its coordinator (KIP-890 part 1): here, where
        # this broker coordinates the id, else by asking the coordinator's broker first
        tid, txns, verify = request.transactional_id, ctx.state.txns, None
        if txns is None:
            tid = None
        elif tid is not None and txns.store.check(tid) != NONE:
            tid, verify = None, _to_verify(ctx, request, denied)
        held = verify[2] if verify else ()
        for td in request.topic_data:
            responses.append({"name": td.name, "partition_responses": [
                _error(pd.index, TOPIC_AUTHORIZATION_FAILED) if td.name in denied else
                {"index": pd.index, "_verify": pd.records} if (td.name, pd.index) in held else
                _append(ctx, td.name, pd.index, pd.records, acks, tid)
                for pd in td.partition_data]})
        if verify:
            pending = _verified(ctx, request, responses, *verify)   # the server awaits it
            ctx.state.txns.verifier.hold(verify[0], verify[2], pending)
            return pending
    return _answer(ctx, request, responses)


ALL_DENIED = frozenset({None})


def _denied(ctx, request) -> frozenset:
    """The topics this principal may not WRITE (TOPIC_AUTHORIZATION_FAILED), or ALL_DENIED when
    it may not WRITE the request's transactional id: Kafka's checks before any append."""
    tid = request.transactional_id
    # as Kafka: the id is checked when the records are transactional (an idempotent producer may name one)
    if tid is not None and any(has_transactional_batch(pd.records) for td in request.topic_data
                               for pd in td.partition_data) and not ctx.allowed(WRITE, TRANSACTIONAL_ID, tid):
        return ALL_DENIED
    return frozenset(td.name for td in request.topic_data if not ctx.allowed(WRITE, TOPIC, td.name))


def _answer(ctx, request, responses: list[dict]):
    acks = request.acks
    if acks == 0:
        return None
    if acks == -1 and not _acked_now(ctx, responses):
        return _await_replicas(ctx, request, responses)   # the server awaits it
    return {"responses": responses, "throttle_time": 0}


def _acked_now(ctx, responses: list[dict]) -> bool:
    """acks=all: settle every partition whose ISR already has its records (an ISR of one);
    False if any must wait (its "_wait" stays for _await_replicas)."""
    done = True
    for td in responses:
        for pr in td["partition_responses"]:
            if "_wait" in pr:
                code = ctx.state.replicas.acked((td["name"], pr["index"]), *pr["_wait"])
                if code is None:
                    done = False
                    continue
                del pr["_wait"]
                _settle(pr, code)
    return done
