"""A status dict shaped like build_status's (SPEC.md plus the per-partition detail)."""

from __future__ import annotations

import copy

STATUS = {
    "name": "demo", "mode": "native", "healthy": True, "bootstrap": "127.0.0.1:9092",
    "services": [
        {"name": "coordinator", "role": "coordinator", "state": "running", "healthy": True,
         "pid": 4242, "port": 9093, "uptime_s": 12.5, "restarts": 0, "cpu_percent": 0.4,
         "rss_bytes": 41000000, "disk_bytes": 12000, "latency_ms": 0.8},
        {"name": "broker-1", "role": "broker", "state": "running", "healthy": True, "pid": 4243,
         "port": 9092, "uptime_s": 12.4, "restarts": 2, "cpu_percent": 1.2, "rss_bytes": 52000000,
         "disk_bytes": 1048576, "latency_ms": 0.9},
    ],
    "topics": [{"name": "orders", "partitions": 2, "replication": 1, "end_offsets": 1200,
                "leaderless_partitions": 0, "under_replicated_partitions": 0,
                "partition_offsets": [{"partition": 0, "end_offset": 1000},
                                      {"partition": 1, "end_offset": 200}]}],
    "groups": [{"group": "billing", "state": "Stable", "members": 1, "lag": 150,
                "partitions": [{"topic": "orders", "partition": 0, "committed": 1000,
                                "end_offset": 1000, "lag": 0},
                               {"topic": "orders", "partition": 1, "committed": 50,
                                "end_offset": 200, "lag": 150}]}],
    "events": [{"time": "2026-11-25T21:00:00Z", "service": "broker-1", "kind": "crash",
                "detail": "exit code -9"},
               {"time": "2026-11-25T21:00:01Z", "service": "broker-1", "kind": "restart",
                "detail": "pid 4243"}],
    "problems": [],
}


def status(**changes) -> dict:
    st = copy.deepcopy(STATUS)
    st.update(changes)
    return st
