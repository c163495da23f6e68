"""A broker that cannot open one partition's log (a backup agent holds its segment and refuses
writers; tests/winfiles.py emulates Windows' refusal) reports it to the coordinator with its
heartbeats (KIP-858's OfflineLogDirs, per partition here): the replica is kept out of the ISR and
from leadership, Metadata lists it in offline_replicas and status names it; once the program lets
go the broker follows, catches up and rejoins the ISR."""

from __future__ import annotations

import signal
import time

from confluent_kafka.admin import NewTopic

from sandbox.client import KafkaClient
from sandbox.health.status import cluster_entries

from .kit import consume_topic, produce_all, producer
from .replication_kit import Cluster
from .test_held_files import cluster_under_windows_rules



def _offline_replicas(c: Cluster, topic: str, index: int) -> list[int]:
    with KafkaClient([("127.0.0.1", p) for p in c.ports.values()], timeout=3.0) as client:
        md, _ = client.metadata([topic])
    return md.topics[topic].partitions[index].offline_replicas


def _problems(c: Cluster) -> list[str]:
    with KafkaClient([("127.0.0.1", p) for p in c.ports.values()], timeout=3.0) as client:
        return cluster_entries(client)[2]


def test_a_replica_whose_log_is_held_is_reported_kept_out_and_rejoins_once_let_go(tmp_path, monkeypatch):
    c, held = cluster_under_windows_rules(tmp_path, monkeypatch, brokers=3)
    try:
        admin = c.admin()
        admin.create_topics([NewTopic("events", 1, 3)],
                            request_timeout=15)["events"].result(20)
        c.wait_in_sync("events", 1)
        produce_all(producer(c.bootstrap, acks="all"), "events", [(None, f"a{i}".encode()) for i in range(20)])
        n = c.partition("events", 0)[0]
        # broker n, the leader, stops; a backup agent holds its segment, refusing writers; it starts again
        proc = c.procs.pop(f"broker-{n}")
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        segment = next((c.data_dir(n) / "events-0").glob("*.log"))
        held.write_text(f"exclusive\t{segment}\n")
        c.start_broker(n)
        t0 = time.monotonic()
        c.wait_for(lambda: _offline_replicas(c, "events", 0) == [n], 10, f"broker {n}'s replica reported offline")
        told_s = time.monotonic() - t0
        leader, _replicas, isr = c.partition("events", 0)
        assert leader not in (n, -1) and n not in isr
        said = [p for p in _problems(c) if p.startswith("events-0:")]
        assert said == [f"events-0: its log on broker {n} cannot be opened (a file is held by another program); "
                        f"led by broker {leader} meanwhile"], said
        # the others serve every record, old and new, with acks=all
        produce_all(producer(c.bootstrap, acks="all"), "events", [(None, f"b{i}".encode()) for i in range(20)])
        got = sorted(m.value() for m in consume_topic(c.bootstrap, "events", 40))
        assert got == sorted([f"a{i}".encode() for i in range(20)] + [f"b{i}".encode() for i in range(20)])
        # a preferred-leader election cannot give it back to broker 1 while it is offline
        time.sleep(1.0)
        assert c.partition("events", 0)[0] == leader and _offline_replicas(c, "events", 0) == [n]
        held.write_text("")   # let go: it follows, catches up, rejoins the ISR
        c.wait_for(lambda: sorted(c.partition("events", 0)[2]) == [1, 2, 3], 30, f"broker {n} back in the ISR")
        assert _offline_replicas(c, "events", 0) == []
        assert not [p for p in _problems(c) if "cannot be opened" in p]
        print(f"reported offline {told_s:.2f} s after the broker started again")
        assert "Traceback" not in c.log_text(f"broker-{n}")
    finally:
        c.stop()
