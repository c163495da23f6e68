"""KafkaClient against a real `sandbox broker` process: every method with exact values, and errors."""

from __future__ import annotations

import socket
import struct
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from sandbox.client import (BrokerMeta, KafkaClient, KafkaClientError, PartitionLag,
                            PartitionMeta, decode_assignment, parse_bootstrap)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def produce(bootstrap: str, topic: str, counts: dict[int, int]) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1, "message.timeout.ms": 20000})
    errors = []
    for part, n in counts.items():
        for i in range(n):
            p.produce(topic, value=f"v{part}-{i}".encode(), partition=part,
                      on_delivery=lambda err, msg: err and errors.append(err))
    assert p.flush(20) == 0 and not errors, errors


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_api_versions_and_metadata(broker):
    with KafkaClient(broker.bootstrap) as c:
        versions, latency = c.api_versions()
        assert versions[18] == (0, 4) and versions[3] == (0, 13) and versions[19] == (2, 7)
        assert 0 < latency < 5000
        assert c.create_topic("orders", partitions=3) is True
        md, latency = c.metadata()
        assert latency > 0 and md.cluster_id and md.controller_id == 1
        assert md.brokers == [BrokerMeta(1, "127.0.0.1", broker.port)]
        t = md.topics["orders"]
        assert t.name == "orders" and t.topic_id is not None and not t.internal and t.error_code == 0
        assert t.partitions == [PartitionMeta(i, 1, [1], [1], t.partitions[i].leader_epoch, 0)
                                for i in range(3)]
        assert all(p.leader_epoch >= 0 for p in t.partitions)
        only, _ = c.metadata(["orders", "missing"])
        assert set(only.topics) == {"orders", "missing"}
        assert only.topics["missing"].error_code == 3 and only.topics["missing"].partitions == []
        assert c.api_versions(node=1)[0] == versions
        assert c.api_versions(node=broker.bootstrap)[0] == versions


def test_create_delete_and_partitions(broker):
    with KafkaClient(broker.bootstrap) as c:
        assert c.create_topic("t", 2, 1, {"retention.ms": 60000}) is True
        with pytest.raises(KafkaClientError) as e:
            c.create_topic("t", 2)
        assert e.value.error_code == 36 and "TOPIC_ALREADY_EXISTS" in str(e.value)
        assert c.create_topic("t", 2, exist_ok=True) is False
        with pytest.raises(KafkaClientError) as e:
            c.create_topic("bad", 1, config={"retention.ms": "soon"})
        assert e.value.error_code == 40 and "bad" in str(e.value)      # INVALID_CONFIG
        with pytest.raises(KafkaClientError) as e:
            c.create_topic("zero", 0)
        assert e.value.error_code == 37                                  # INVALID_PARTITIONS
        c.create_partitions("t", 5)
        assert len(c.metadata(["t"])[0].topics["t"].partitions) == 5
        with pytest.raises(KafkaClientError) as e:
            c.create_partitions("t", 3)
        assert e.value.error_code == 37
        c.delete_topic("t")
        assert "t" not in c.metadata()[0].topics
        with pytest.raises(KafkaClientError) as e:
            c.delete_topic("t")
        assert e.value.error_code == 3 and e.value.error_name == "UNKNOWN_TOPIC_OR_PARTITION"


def test_configs_round_trip(broker):
    with KafkaClient(broker.bootstrap) as c:
        c.create_topic("conf", config={"retention.ms": 1000, "cleanup.policy": "compact"})
        got = c.describe_configs("conf")
        assert got["retention.ms"] == ("1000", False)
        assert got["cleanup.policy"] == ("compact", False)
        assert got["segment.bytes"] == ("1073741824", True)
        c.alter_configs("conf", {"segment.ms": 5000, "retention.ms": "2000"}, delete=["cleanup.policy"])
        got = c.describe_configs("conf")
        assert {k: v for k, (v, d) in got.items() if not d} == {"segment.ms": "5000", "retention.ms": "2000"}
        assert got["cleanup.policy"] == ("delete", True)
        with pytest.raises(KafkaClientError) as e:
            c.describe_configs("nope")
        assert e.value.error_code == 3
        with pytest.raises(KafkaClientError) as e:
            c.alter_configs("conf", {"retention.ms": "x"})
        assert e.value.error_code == 40


def test_offsets_groups_and_lag(broker):
    with KafkaClient(broker.bootstrap) as c:
        c.create_topic("events", partitions=3)
        assert c.end_offsets("events") == {0: 0, 1: 0, 2: 0}
        produce(broker.bootstrap, "events", {0: 3, 1: 2})
        assert c.end_offsets("events") == {0: 3, 1: 2, 2: 0}
        assert c.end_offsets("events", [1]) == {1: 2}
        assert c.start_offsets("events") == {0: 0, 1: 0, 2: 0}
        with pytest.raises(KafkaClientError) as e:
            c.end_offsets("missing")
        assert e.value.error_code == 3
        with pytest.raises(KafkaClientError, match="no partition 7"):
            c.end_offsets("events", [7])

        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "billing",
                             "enable.auto.commit": False, "auto.offset.reset": "earliest",
                             "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
        try:
            consumer.subscribe(["events"])
            got, deadline = 0, time.monotonic() + 30
            while got < 5 and time.monotonic() < deadline:
                m = consumer.poll(0.2)
                if m is not None and not m.error():
                    got += 1
            assert got == 5
            consumer.commit(offsets=[TopicPartition("events", 0, 2), TopicPartition("events", 1, 2)],
                            asynchronous=False)
            assert c.committed_offsets("billing") == {("events", 0): 2, ("events", 1): 2}
            assert c.group_lag("billing") == [PartitionLag("events", 0, 2, 3, 1),
                                              PartitionLag("events", 1, 2, 2, 0)]
            listed = {g.group: g for g in c.list_groups()}
            assert listed["billing"].protocol_type == "consumer"
            assert listed["billing"].state == "Stable"
            d = c.describe_group("billing")
            assert (d.group, d.state, d.protocol_type, d.protocol) == ("billing", "Stable", "consumer", "range")
            assert len(d.members) == 1
            assert d.members[0].assignment == {"events": [0, 1, 2]}
        finally:
            consumer.close()
        assert c.describe_group("billing").state == "Empty"
        assert c.committed_offsets("nobody") == {} and c.group_lag("nobody") == []


def test_nothing_listening_is_a_clear_error():
    port = free_port()
    with KafkaClient(f"127.0.0.1:{port}", timeout=2) as c:
        with pytest.raises(KafkaClientError) as e:
            c.api_versions()
        assert str(e.value) == f"nothing listens on 127.0.0.1:{port} (connection refused); is the sandbox running?"
        assert e.value.error_code is None
        with pytest.raises(KafkaClientError, match=f"nothing listens on 127.0.0.1:{port}"):
            c.metadata()
    p2 = free_port()
    with pytest.raises(KafkaClientError, match="no broker answered: nothing listens.*nothing listens"):
        KafkaClient([("127.0.0.1", port), ("127.0.0.1", p2)]).create_topic("x")


def test_silent_server_times_out():
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(KafkaClientError, match=f"127.0.0.1:{port} did not answer within 0.5s"):
            KafkaClient(f"127.0.0.1:{port}", timeout=0.5).api_versions()
        assert time.monotonic() - start < 5


def test_reconnects_after_broker_restart_and_falls_over_to_next_address(broker):
    dead = free_port()
    with KafkaClient(f"127.0.0.1:{dead},127.0.0.1:{broker.port}") as c:
        c.create_topic("keep", 2)
        broker.restart()
        assert set(c.metadata()[0].topics) >= {"keep"}
        assert c.end_offsets("keep") == {0: 0, 1: 0}


def test_advertised_hosts_map_to_given_addresses_by_port(broker):
    with KafkaClient(f"localhost:{broker.port}") as c:      # the broker advertises 127.0.0.1
        c.create_topic("local", 1)
        assert c.end_offsets("local") == {0: 0}
        assert ("localhost", broker.port) in c._conns and ("127.0.0.1", broker.port) not in c._conns


def test_parse_bootstrap_and_assignment_decoding():
    assert parse_bootstrap("a:1, b:2") == [("a", 1), ("b", 2)]
    assert parse_bootstrap("[::1]:9092") == [("::1", 9092)]
    assert parse_bootstrap([("h", 3)]) == [("h", 3)]
    for bad in ("", "nohost", "h:port"):
        with pytest.raises(KafkaClientError, match="host:port|no bootstrap"):
            parse_bootstrap(bad)
    data = struct.pack(">hih", 1, 2, 1) + b"a" + struct.pack(">iii", 2, 0, 3) \
        + struct.pack(">h", 2) + b"bb" + struct.pack(">ii", 1, 7) + struct.pack(">i", -1)
    assert decode_assignment(data) == {"a": [0, 3], "bb": [7]}
    assert decode_assignment(b"\x00") == {}


def test_one_bootstrap_address_reaches_every_broker_of_the_machine(tmp_path):
    """Given only broker-1's address, the client finds broker-2 through the metadata (advertised on
    the same host) as any Kafka client does; an advertised host that is not ours is refused with the
    reason instead of "not in the cluster metadata"."""
    from integration.stack_kit import make_project

    proj = make_project(tmp_path / "two", brokers=2, topics="[topics.spread]\npartitions = 4\n")
    try:
        r = proj.up()
        assert r.returncode == 0, r.stdout + r.stderr
        produce(proj.bootstrap, "spread", {p: p + 1 for p in range(4)})
        with KafkaClient(f"127.0.0.1:{proj.port}") as c:
            leaders = {p.leader for p in c.metadata(["spread"])[0].topics["spread"].partitions}
            assert leaders == {1, 2}
            assert c.end_offsets("spread") == {0: 1, 1: 2, 2: 3, 3: 4}
            assert ("127.0.0.1", proj.port + 1) in c._conns
        with KafkaClient(f"localhost:{proj.port}") as c:   # loopback by another name is the same host
            assert c.end_offsets("spread") == {0: 1, 1: 2, 2: 3, 3: 4}
            c._metadata([])
            assert c._allowed("127.0.0.1", proj.port + 1, "broker 2") == ("127.0.0.1", proj.port + 1)
            with pytest.raises(KafkaClientError, match="broker 9 is at 10.1.2.3:9092, which is not among"):
                c._allowed("10.1.2.3", 9092, "broker 9")
    finally:
        problems = proj.teardown()
        assert not problems, problems


def test_many_topics_configs_and_end_offsets_in_one_request_each(broker):
    """The catalog refresh and `status` read every topic: with hundreds of topics one request per
    topic cost the broker a tenth of a core every few seconds. The batched forms answer as the
    one-topic ones do, leave out a topic that cannot be answered, and ask once."""
    with KafkaClient(broker.bootstrap) as c:
        names = [f"many{i}" for i in range(30)]
        for i, n in enumerate(names):
            c.create_topic(n, partitions=2, config={"retention.ms": str(1000 + i)} if i % 3 == 0 else None)
        produce(broker.bootstrap, "many4", {0: 3, 1: 5})
        sent: list[int] = []
        real = c._send

        def counting(addr, api_key, data):
            sent.append(api_key)
            return real(addr, api_key, data)

        c._send = counting
        described = c.describe_topic_configs([*names, "never-made"])
        assert sent == [32] and set(described) == set(names)
        assert all(described[n] == c.describe_configs(n) for n in names)
        assert described["many3"]["retention.ms"] == ("1003", False)
        assert described["many4"]["retention.ms"][1] is True   # the broker default
        only = c.describe_topic_configs(names[:2], keys=["min.insync.replicas"])
        assert {n: list(cfg) for n, cfg in only.items()} == {n: ["min.insync.replicas"] for n in names[:2]}
        sent.clear()
        ends = c.end_offsets_of({n: [0, 1] for n in [*names, "never-made"]})
        assert sent == [3, 2]   # one Metadata, one ListOffsets (one broker)
        assert ends == {(n, p): (3 if p == 0 else 5) if n == "many4" else 0 for n in names for p in (0, 1)}


def test_replica_folders_tell_when_a_folder_was_written_on_the_broker_s_clock(broker):
    """The supervisor asks the brokers which topic each folder holds, when its partition.metadata
    was written and what their clock says (broker_clock), so it compares the two on the broker's
    clock: in Docker mode that is Docker Desktop's VM's, which can drift from the host's."""
    import os
    from sandbox.partition_metadata import PARTITION_METADATA
    with KafkaClient(broker.bootstrap) as c:
        assert c.create_topic("drift", partitions=1) is True
        folder = broker.data_dir / "drift-0" / PARTITION_METADATA
        deadline = time.time() + 10
        while not folder.exists() and time.time() < deadline:
            time.sleep(0.05)
        [(key, (topic_id, written))] = c.replica_folders(1, {"drift": range(1)}).items()
        assert key == ("drift", 0) and topic_id.int
        assert abs(written - folder.stat().st_mtime) < 0.002
        ahead = time.time() + 3600   # written by a clock an hour ahead: told as it is
        os.utime(folder, (ahead, ahead))
        [(_key, (_id, written))] = c.replica_folders(1, {"drift": range(1)}).items()
        assert abs(written - ahead) < 0.002
        assert abs(c.broker_clock(1) - time.time()) < 2
        assert c.replica_folders(1, {"none": range(1)}) == {}
