"""TxnOffsetCommit (28), v0-v5: a transactional producer commits a consumer group's offsets inside
its transaction (send_offsets_to_transaction). They are written to the group's `__consumer_offsets`
partition as transactional records and stay pending until the transaction's marker (offsets_topic.py);
v3+ carries the member's generation, checked as Kafka's group coordinator checks a transactional commit."""

from __future__ import annotations

from sandbox.coordinator.acls import GROUP, READ, TOPIC, TRANSACTIONAL_ID, WRITE
from sandbox.protocol.errors import (
    GROUP_AUTHORIZATION_FAILED, TOPIC_AUTHORIZATION_FAILED, TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    COORDINATOR_NOT_AVAILABLE, FENCED_MEMBER_EPOCH, ILLEGAL_GENERATION, INVALID_GROUP_ID, NETWORK_EXCEPTION, NONE,
    NOT_COORDINATOR, OFFSET_METADATA_TOO_LARGE, UNKNOWN_MEMBER_ID, UNKNOWN_TOPIC_OR_PARTITION,
)

from ..group_model import EMPTY
from ..internal_topics import OFFSETS_TOPIC
from ..transactions.verifier import refusal
from ..groups import MAX_METADATA_CHARS

API_KEY = 28
MIN_VERSION = 0
MAX_VERSION = 5
ABORTABLE_FROM = 5   # TRANSACTION_ABORTABLE to clients of v5+ (KIP-890), INVALID_TXN_STATE before


def member_check(groups, group_id: str, generation: int, member_id: str, instance_id: str | None) -> int:
    """May this transactional commit go in? Kafka's validateOffsetCommit with isTransactional: a
    commit without member, generation or instance id is accepted whatever the group's state
    (except mid-rebalance), one that names a member is checked like OffsetCommit's."""
    anonymous = generation < 0 and not member_id and instance_id is None
    if group_id in groups.consumer:   # KIP-848 consumer group: the generation is the member epoch
        group = groups.consumer.machine.groups[group_id]
        if (generation < 0 and not group.members) or anonymous:
            return NONE
        m = group.members.get(member_id)
        if m is None:
            return UNKNOWN_MEMBER_ID
        if m.classic is not None:   # a member still on the classic protocol: its generation
            return groups.consumer.machine.classic_commit_check(m, generation)
        if generation > m.epoch:
            return FENCED_MEMBER_EPOCH
        return ILLEGAL_GENERATION if generation < m.epoch else NONE   # Kafka turns STALE_MEMBER_EPOCH into this
    group = groups.machine.groups.get(group_id)
    if anonymous and group is not None and group.state != EMPTY:
        # the older versions of this API carry no member: accepted in any state, as Kafka's
        # validateOffsetCommit does for transactional commits (aiokafka and kafka-python send v0)
        return NONE
    return groups.machine.commit_check(group_id, generation, member_id, instance_id, transactional=True)


async def _verified(ctx, request) -> int:
    """KIP-890 part 1, as for a transactional Produce: before the commit opens the producer's
    transaction on the group's `__consumer_offsets` partition, the transaction's coordinator
    confirms that AddOffsetsToTxn put the partition in the ongoing transaction. A late or zombie
    TxnOffsetCommit (its transaction ended, or aborted by a timeout) would otherwise stay pending
    for good, and OffsetFetch with require_stable answer UNSTABLE_OFFSET_COMMIT for ever."""
    state = ctx.state
    if not request.transactional_id or state.txns.store.coordinator_for(request.transactional_id) is None:
        return NONE   # no coordinator ever began a transaction to check against (as Produce)
    part = (OFFSETS_TOPIC, state.offsets.partition_for(request.group_id))
    plog, _code = state.led_log(*part)
    if plog is not None and plog.in_transaction(request.producer_id, request.producer_epoch):
        return NONE   # open here already: the coordinator confirmed it for an earlier commit
    codes = await state.txns.verifier.verify(request.transactional_id, request.producer_id,
                                             request.producer_epoch, [part])
    code = codes.get(part, NONE)
    # a coordinator moving, busy or not reached: the client finds it again and retries, as Kafka's
    # group coordinator answers a verification it could not finish
    return refusal(NOT_COORDINATOR if code == NETWORK_EXCEPTION else code, COORDINATOR_NOT_AVAILABLE,
                   ctx.api_version >= ABORTABLE_FROM)


def _answer(request, codes: dict[tuple[str, int], int]) -> dict:
    return {"throttle_time": 0, "topics": [
        {"name": t.name, "partitions": [{"partition_index": p.partition_index,
                                         "error_code": codes.get((t.name, p.partition_index), TOPIC_AUTHORIZATION_FAILED)}
                                        for p in t.partitions]}   # a partition left out: a topic the ACLs refuse
        for t in request.topics]}


async def handle(ctx, request) -> dict:
    state = ctx.state
    wanted = [(t.name, p) for t in request.topics for p in t.partitions]
    if ctx.restricted:   # ACLs: WRITE on the transactional id, READ on the group and on each topic
        if not ctx.allowed(WRITE, TRANSACTIONAL_ID, request.transactional_id):
            return _answer(request, {(t, p.partition_index): TRANSACTIONAL_ID_AUTHORIZATION_FAILED for t, p in wanted})
        if not ctx.allowed(READ, GROUP, request.group_id):
            return _answer(request, {(t, p.partition_index): GROUP_AUTHORIZATION_FAILED for t, p in wanted})
        # the others are committed, as in Kafka; _answer refuses the ones left out
        wanted = [(t, p) for t, p in wanted if ctx.allowed(READ, TOPIC, t)]
        if not wanted:
            return _answer(request, {})
    if not request.group_id:
        return _answer(request, {(t, p.partition_index): INVALID_GROUP_ID for t, p in wanted})
    await state.offsets.ensure_topic()
    if not state.is_group_coordinator(request.group_id):
        return _answer(request, {(t, p.partition_index): NOT_COORDINATOR for t, p in wanted})
    generation = getattr(request, "generation_id", -1)
    code = member_check(state.groups, request.group_id, generation, getattr(request, "member_id", ""),
                        getattr(request, "group_instance_id", None))
    if code != NONE:
        return _answer(request, {(t, p.partition_index): code for t, p in wanted})
    codes: dict[tuple[str, int], int] = {}
    entries = []
    for topic, p in wanted:
        meta = p.committed_metadata or ""
        if state.leader_of(topic, p.partition_index) is None:
            codes[(topic, p.partition_index)] = UNKNOWN_TOPIC_OR_PARTITION
        elif len(meta) > MAX_METADATA_CHARS:
            codes[(topic, p.partition_index)] = OFFSET_METADATA_TOO_LARGE
        else:
            codes[(topic, p.partition_index)] = NONE
            entries.append((topic, p.partition_index, p.committed_offset,
                            getattr(p, "committed_leader_epoch", -1), meta))
    if entries:
        code = await _verified(ctx, request)
        if code != NONE:
            return _answer(request, {k: code if c == NONE else c for k, c in codes.items()})
        try:
            state.offsets.commit_txn(request.group_id, request.producer_id, request.producer_epoch, entries)
            code = await state.offsets.replicated(request.group_id, state.config.offsets_commit_timeout_ms / 1000)
        except OSError as e:   # OffsetsNotWritable carries Kafka's answer (NOT_COORDINATOR, ...)
            code = getattr(e, "error_code", COORDINATOR_NOT_AVAILABLE)
        if code != NONE:
            codes = {k: code if c == NONE else c for k, c in codes.items()}
    return _answer(request, codes)
