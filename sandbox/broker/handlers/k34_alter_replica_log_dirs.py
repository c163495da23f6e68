"""AlterReplicaLogDirs (34), v1-v2: move replicas between a broker's log dirs. A broker here has one
log dir (its data dir, as DescribeLogDirs names it), so every move is to where the replica already
is: answered NONE without touching anything, as Kafka answers a move to the current dir. As in
Kafka, a dir that is not this broker's is LOG_DIR_NOT_FOUND and a partition this broker holds no
replica of is REPLICA_NOT_AVAILABLE."""

from __future__ import annotations

from sandbox.coordinator.acls import ALTER, CLUSTER, CLUSTER_NAME
from sandbox.protocol.errors import CLUSTER_AUTHORIZATION_FAILED as _CLUSTER_DENIED
import os

from sandbox.protocol.errors import LOG_DIR_NOT_FOUND, NONE, REPLICA_NOT_AVAILABLE

API_KEY = 34
MIN_VERSION = 1
MAX_VERSION = 2


def _same_dir(path: str, data_dir: str) -> bool:
    if path == data_dir:
        return True
    try:
        return os.path.realpath(path) == os.path.realpath(data_dir)
    except (OSError, ValueError):
        return False


def handle(ctx, request) -> dict:
    state = ctx.state
    data_dir = str(state.config.data_dir)
    results: dict[str, list[dict]] = {}
    denied = ctx.restricted and not ctx.allowed(ALTER, CLUSTER, CLUSTER_NAME)   # ACLs: ALTER on the cluster
    for d in request.dirs:
        ours = _same_dir(d.path, data_dir)
        for t in d.topics:
            for index in t.partitions:
                if denied:
                    code = _CLUSTER_DENIED
                elif not ours:
                    code = LOG_DIR_NOT_FOUND
                elif (t.name, index) not in state.partitions:
                    code = REPLICA_NOT_AVAILABLE
                else:
                    code = NONE
                results.setdefault(t.name, []).append({"partition_index": index, "error_code": code})
    return {"throttle_time": 0, "results": [{"topic_name": name, "partitions": parts}
                                            for name, parts in results.items()]}
