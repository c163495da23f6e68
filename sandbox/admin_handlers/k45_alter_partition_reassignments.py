"""AlterPartitionReassignments (45), v0: move partitions' replicas between brokers (KIP-455). The
coordinator decides (sandbox/coordinator/reassign.py): the new brokers copy the partition from
its leader and, once all of them are in sync, the replicas become the target and the brokers left
out delete their copy. replicas = None cancels a running reassignment (NO_REASSIGNMENT_IN_PROGRESS
when none runs); a target already in place is a no-op; an empty list, a broker twice or one not
registered is INVALID_REPLICA_ASSIGNMENT. Brokers forward it to the coordinator."""

from __future__ import annotations

from sandbox.coordinator.acls import ALTER

from .access import cluster_refusal
from sandbox.coordinator.model import CoordinatorError
from sandbox.protocol.errors import NONE

API_KEY = 45
MIN_VERSION = 0
MAX_VERSION = 0


async def handle(ctx, request) -> dict:
    if (refused := cluster_refusal(ctx, ALTER)) != NONE:   # ACLs: ALTER on the cluster
        return {"throttle_time": 0, "error_code": refused, "error_message": None, "responses": []}
    wanted = [(t.name, int(p.partition_index), None if p.replicas is None else [int(r) for r in p.replicas])
              for t in request.topics for p in t.partitions]
    try:
        results = await ctx.admin.coordinator.alter_reassignments(wanted)
    except CoordinatorError as e:
        return {"throttle_time": 0, "error_code": e.error_code, "error_message": e.message, "responses": []}
    responses = []
    for t in request.topics:
        parts = []
        for p in t.partitions:
            code, message = results[(t.name, int(p.partition_index))]
            parts.append({"partition_index": p.partition_index, "error_code": code, "error_message": message})
        responses.append({"name": t.name, "partitions": parts})
    return {"throttle_time": 0, "error_code": NONE, "error_message": None, "responses": responses}
