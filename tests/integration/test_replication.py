"""Replication with real clients on a real 3-broker cluster: an idempotent acks=all producer
writes while the leader is SIGKILLed (and comes back) or paused for longer than its session;
afterwards every acknowledged record is readable exactly once (read with kcat) and every replica
holds identical bytes per offset. min.insync.replicas refuses acks=all when the ISR is too small."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from .kit import kcat, unique
from .replication_kit import Cluster, cluster3  # noqa: F401 - the fixture

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture
def cluster(cluster3):
    return cluster3


def create(cluster: Cluster, name: str, partitions: int, min_isr: int = 2) -> None:
    admin = cluster.admin()   # kept alive until the answer is in
    fs = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=3,
                                                 config={"min.insync.replicas": str(min_isr)})],
                                       request_timeout=15)
    fs[name].result(timeout=20)
    cluster.wait_in_sync(name, partitions, timeout=30)


def produce_through(cluster: Cluster, topic: str, fault, n: int = 2400, per_s: int = 300,
                    fault_at_s: float = 1.5) -> tuple[dict, list]:
    """An idempotent acks=all producer writes n records at a steady rate while `fault` runs in a
    thread; returns ({value: (partition, offset)} of every acknowledged record, errors)."""
    acked: dict[bytes, tuple[int, int]] = {}
    errors: list = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked[msg.value()] = (msg.partition(), msg.offset())

    p = Producer({"bootstrap.servers": cluster.bootstrap, "enable.idempotence": True, "acks": "all",
                  "linger.ms": 5, "message.timeout.ms": 90000, "retry.backoff.ms": 100,
                  "topic.metadata.refresh.interval.ms": 1000, "socket.timeout.ms": 5000})
    t = threading.Timer(fault_at_s, fault)
    t.start()
    start = time.monotonic()
    try:
        for i in range(n):
            p.produce(topic, key=str(i % 11).encode(), value=f"v{i}".encode(), on_delivery=on_delivery)
            p.poll(0)
            ahead = start + i / per_s - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        left = p.flush(120)
        assert left == 0, f"{left} records never got an answer"
    finally:
        t.join(60)
    return acked, errors


def read_all(cluster: Cluster, topic: str) -> dict[tuple[int, int], bytes]:
    """Every record of the topic from the beginning to the high watermark, read with kcat."""
    out = kcat("-C", "-b", cluster.bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
               "-f", "%p %o %s\\n", timeout=60)
    assert out.returncode == 0, out.stderr
    got = {}
    for line in out.stdout.decode().splitlines():
        part, off, value = line.split(" ", 2)
        got[(int(part), int(off))] = value.encode()
    return got


def check_every_ack_once(acked: dict, got: dict) -> None:
    assert acked, "nothing was acknowledged"
    for value, where in acked.items():
        assert got.get(where) == value, f"acknowledged {value!r} at {where}, read {got.get(where)!r}"
    values = list(got.values())
    assert len(values) == len(set(values)), "a record was written twice"


def check_replicas_identical(cluster: Cluster, topic: str, partitions: int) -> None:
    """After the cluster stopped: every replica of every partition, byte for byte per offset."""
    for i in range(partitions):
        ends = {n: cluster.log_end(n, topic, i) for n in cluster.ports}
        assert len(set(ends.values())) == 1, f"partition {i}: replicas end at {ends}"
        data = {n: cluster.replica_batches(n, topic, i, ends[n]) for n in cluster.ports}
        assert len(set(data.values())) == 1, f"partition {i}: replicas hold different bytes"
        assert data[1]


def leader_of(cluster: Cluster, topic: str, index: int = 0) -> int:
    leader = cluster.partition(topic, index)[0]
    assert leader in cluster.ports
    return leader


def ride_through(cluster: Cluster, topic: str, partitions: int, victim: int, fault) -> None:
    """Write through `fault`, then: every record acknowledged, each read exactly once, the victim
    no longer the leader (a preferred leader comes back only after 300 s), every replica alike."""
    acked, errors = produce_through(cluster, topic, fault)
    assert not errors, errors[:3]
    assert len(acked) == 2400
    cluster.wait_for(lambda: cluster.partition(topic, 0)[0] not in (-1, victim), 20, "a leader other than the victim")
    check_every_ack_once(acked, read_all(cluster, topic))
    cluster.wait_in_sync(topic, partitions)
    time.sleep(1.5)   # followers fetch the last batches
    cluster.stop()
    check_replicas_identical(cluster, topic, partitions)


def test_acks_all_survives_the_leader_being_killed_and_coming_back(cluster):
    topic = unique("failover-kill")
    create(cluster, topic, 2)
    victim = leader_of(cluster, topic)

    def fault():
        cluster.kill(victim)
        time.sleep(3)
        cluster.start_broker(victim)   # same journal: it truncates what it alone had and follows

    ride_through(cluster, topic, 2, victim, fault)


def test_acks_all_survives_the_leader_paused_past_its_session(cluster):
    topic = unique("failover-pause")
    create(cluster, topic, 1)
    victim = leader_of(cluster, topic)

    def fault():
        cluster.pause(victim)
        time.sleep(cluster.session_ms / 1000 + 3)   # fenced, replaced, and not told yet
        cluster.resume(victim)

    ride_through(cluster, topic, 1, victim, fault)


def test_deleted_records_stay_deleted_when_the_leader_is_killed_right_after(cluster):
    """DeleteRecords on a replicated partition is answered once every live replica moved its log
    start (followers take their leader's from each fetch, as Kafka's do): killed right after the
    answer, the leader is replaced by a follower that no longer serves the deleted records."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    from confluent_kafka import KafkaError

    topic = unique("delete-records-failover")
    create(cluster, topic, 1)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True})
    for i in range(100):
        p.produce(topic, value=f"r{i}".encode(), partition=0)
    assert p.flush(30) == 0
    victim = leader_of(cluster, topic)
    admin = cluster.admin()
    done = admin.delete_records([TopicPartition(topic, 0, 60)], operation_timeout=20, request_timeout=30)
    result = list(done.values())[0].result(35)
    assert result.low_watermark == 60
    cluster.kill(victim)
    cluster.wait_for(lambda: cluster.partition(topic, 0)[0] not in (-1, victim), 20, "a new leader")

    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": unique("g"), "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "topic.metadata.refresh.interval.ms": 500})
    try:
        low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=15)
        assert (low, high) == (60, 100)
        c.assign([TopicPartition(topic, 0, 0)])   # below the log start: reset to the earliest
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 40 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.append((m.offset(), m.value()))
        assert got[0] == (60, b"r60") and len(got) == 40
    finally:
        c.close()
    cluster.start_broker(victim)   # its own log start follows too once it fetches again
    cluster.wait_in_sync(topic, 1)

    # a live follower that does not fetch (paused, within its session) holds the answer back
    # until the request's timeout: REQUEST_TIMED_OUT, as Kafka answers it (the leader deleted)
    leader, _replicas, isr = cluster.partition(topic, 0)
    follower = next(n for n in isr if n != leader)
    from confluent_kafka.admin import AdminClient
    to_leader = AdminClient({"bootstrap.servers": f"127.0.0.1:{cluster.ports[leader]}"})
    to_leader.list_topics(topic, timeout=10)   # connected before the pause
    cluster.pause(follower)
    try:
        done = to_leader.delete_records([TopicPartition(topic, 0, 80)], operation_timeout=1, request_timeout=10)
        with pytest.raises(KafkaException) as e:
            list(done.values())[0].result(15)
        assert e.value.args[0].code() == KafkaError.REQUEST_TIMED_OUT
    finally:
        cluster.resume(follower)


def test_min_insync_replicas_refuses_acks_all_but_not_acks_1(cluster):
    from kafka import KafkaProducer
    from kafka.errors import NotEnoughReplicasError

    topic = unique("min-isr")
    create(cluster, topic, 1, min_isr=2)
    leader = leader_of(cluster, topic)
    others = [n for n in cluster.ports if n != leader]

    def send(acks):
        # bootstrap from the leader alone: the paused brokers would hold the bootstrap up
        p = KafkaProducer(bootstrap_servers=f"127.0.0.1:{cluster.ports[leader]}", acks=acks, retries=0,
                          request_timeout_ms=8000)
        try:
            return p.send(topic, b"x", partition=0).get(timeout=15)
        finally:
            p.close(5)

    assert send("all").offset == 0
    for n in others:
        cluster.pause(n)
    try:
        cluster.wait_for(lambda: cluster.partition(topic, 0)[2] == [leader], 30, "the ISR to shrink to the leader")
        with pytest.raises(NotEnoughReplicasError):
            send("all")
        assert send(1).offset == 1        # acks=1 is answered after the leader's append
    finally:
        for n in others:
            cluster.resume(n)
    cluster.wait_in_sync(topic, 1)
    assert send("all").offset == 2
    got = read_all(cluster, topic)
    assert sorted(got) == [(0, 0), (0, 1), (0, 2)]


def test_acks_all_to_replicated_and_single_replica_topics_on_the_same_connections(cluster):
    """Found by confluent-kafka's own suite: a Produce answered at once (here: an RF 1 topic's)
    pipelined behind one waiting for its replicas had its reply taken for a request, and the
    broker closed the connection (17 closes, 2,373 of 3,000 records delivered within 60 s)."""
    t3, t1 = unique("rf3"), unique("rf1")
    create(cluster, t3, 3)
    admin = cluster.admin()   # kept alive until the answer is in
    fs = admin.create_topics([NewTopic(t1, num_partitions=3, replication_factor=1)], request_timeout=15)
    fs[t1].result(timeout=20)
    cluster.wait_in_sync(t1, 3, timeout=30)
    delivered, errors = [], []
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 0,
                  "enable.idempotence": False, "max.in.flight": 5, "batch.num.messages": 1})
    for i in range(1500):
        p.produce(t3 if i % 2 else t1, b"%d" % i, partition=i % 3,
                  on_delivery=lambda err, msg: (errors if err else delivered).append(err or msg.offset()))
        p.poll(0)
    assert p.flush(60) == 0
    assert errors == [] and len(delivered) == 1500
    closed = [line for n in cluster.ports for line in cluster.log_text(f"broker-{n}").splitlines()
              if "unsupported api_key" in line]
    assert closed == []
    assert len(read_all(cluster, t1)) == len(read_all(cluster, t3)) == 750


@pytest.mark.parametrize("how", ["auto rebalance", "ElectLeaders"])
def test_the_preferred_leader_gets_its_partition_back(tmp_path, how):
    """After a failover the returning broker follows; once it is in sync again, leadership goes
    back to it: by auto.leader.rebalance.enable (checked every second here), or when a client
    asks with ElectLeaders (auto rebalance off)."""
    from confluent_kafka import ElectionType, TopicPartition

    interval = "1" if how == "auto rebalance" else "0"
    cluster = Cluster(tmp_path / "cluster", coordinator_options=["--leader-imbalance-check-interval-s", interval])
    try:
        cluster.start()
        topic = unique("preferred")
        create(cluster, topic, 1)
        leader, replicas, _isr = cluster.partition(topic, 0)
        assert leader == replicas[0]
        cluster.kill(leader)
        cluster.wait_for(lambda: cluster.partition(topic, 0)[0] not in (leader, -1), 20, "another leader")
        cluster.start_broker(leader)
        cluster.wait_in_sync(topic, 1)
        if how == "ElectLeaders":
            time.sleep(2)
            assert cluster.partition(topic, 0)[0] != leader       # nothing moves it by itself
            admin = cluster.admin()
            result = admin.elect_leaders(ElectionType.PREFERRED, [TopicPartition(topic, 0)]).result(timeout=15)
            assert result[TopicPartition(topic, 0)] is None       # no error for the partition
        cluster.wait_for(lambda: cluster.partition(topic, 0)[0] == leader, 20, "the preferred leader back")
        acked, errors = produce_through(cluster, topic, lambda: None, n=200, per_s=400, fault_at_s=0)
        assert not errors and len(acked) == 200
    finally:
        cluster.stop()


def test_a_killed_leader_is_replaced_without_waiting_for_its_session(tmp_path):
    """A SIGKILLed broker's sockets are closed by its OS: the coordinator fences it once its session
    connection is gone (and no heartbeat came on another), long before the session timeout (20 s
    here), so its partitions get a new leader at once."""
    cluster = Cluster(tmp_path / "cluster", session_ms=20000)
    try:
        cluster.start()
        topic = unique("fast-failover")
        create(cluster, topic, 1)
        leader = leader_of(cluster, topic)
        cluster.kill(leader)
        cluster.wait_for(lambda: cluster.partition(topic, 0)[0] not in (leader, -1), 12,
                         "a new leader well inside the 20 s session")
        acked, errors = produce_through(cluster, topic, lambda: None, n=100, per_s=400, fault_at_s=0)
        assert not errors and len(acked) == 100
    finally:
        cluster.stop()


def remake_while_broker_3_is_down(cluster: Cluster, also_deleted: tuple[str, ...] = ()):
    """Topic `again` (RF 3) gets records old0-old9, then broker 3 is SIGKILLed, `again` (and the
    topics `also_deleted`, with records too) deleted, `again` made again on brokers 1-3 and given
    records new0-new2 (min.insync.replicas 1). Returns the admin client."""
    for name in ("again", *also_deleted):
        create(cluster, name, 1)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(10):   # one batch each: the old records are not cut away as one batch
        p.produce("again", value=f"old{i}".encode())
        for name in also_deleted:
            p.produce(name, value=f"{name}{i}".encode())
        p.flush(10)
    cluster.wait_in_sync("again", 1)
    cluster.kill(3)
    admin = cluster.admin()
    for f in admin.delete_topics(["again", *also_deleted], request_timeout=15).values():
        f.result(20)
    cluster.wait_for(lambda: "again" not in admin.list_topics(timeout=3).topics, 20, "the deletion")
    fs = admin.create_topics([NewTopic("again", num_partitions=1, replica_assignment=[[1, 2, 3]],
                                       config={"min.insync.replicas": "1"})], request_timeout=15)
    fs["again"].result(20)
    for i in range(3):
        p.produce("again", value=f"new{i}".encode())
    assert p.flush(20) == 0
    return admin


def test_a_topic_deleted_while_a_broker_was_down_stays_deleted_and_its_remake_holds_only_its_records(cluster):
    """A broker SIGKILLed, then a topic deleted and another deleted and made again under the same
    name, then the broker started: it must drop both stray folders as Kafka does (the coordinator's
    journal is the one it followed). It used to put the deleted topic back as one nobody made, and
    to keep the old topic's records under the new one's name, in its ISR with bytes the leader does
    not have (led by it, consumers would read the old topic's records)."""
    admin = remake_while_broker_3_is_down(cluster, also_deleted=("gone",))
    cluster.start_broker(3)
    cluster.wait_in_sync("again", 1)
    time.sleep(11)   # past the brokers' grace for putting back what the metadata lost
    topics = admin.list_topics(timeout=5).topics
    assert "gone" not in topics
    assert not (cluster.data_dir(3) / "gone-0").exists()
    assert "stray-partition-deleted" in cluster.log_text("broker-3")
    cluster.stop()
    leader = cluster.replica_batches(1, "again", 0, 3)
    assert leader and all(cluster.replica_batches(n, "again", 0, 3) == leader for n in (2, 3))
    assert b"old" not in cluster.replica_batches(3, "again", 0, 1 << 30)


def test_a_folder_of_a_remade_topic_kept_through_a_lost_journal_does_not_become_its_records(cluster):
    """As above, but the coordinator's journal is destroyed before broker 3 comes back, so the
    deletion is lost with it and broker 3 cannot tell its folder is stale from the history. The
    topic is put back as the supervisor's restore does (its topic id, leader epochs above the old
    ones, led by broker 1). Broker 3, a follower whose folder names the old topic's id, must start
    afresh: it used to keep it, cut to the leader's log end, so its offsets 0-2 held the old
    topic's records (led by it later, consumers would read them in place of acknowledged ones)."""
    from sandbox.client import KafkaClient
    from sandbox.health.status import coordinator_problems
    from sandbox.partition_metadata import PARTITION_METADATA, read_partition_metadata
    from sandbox.protocol.extensions import RESTORE_LEADER_EPOCH, RESTORE_TOPIC_ID

    remake_while_broker_3_is_down(cluster)
    new_id = read_partition_metadata(cluster.data_dir(1) / "again-0" / PARTITION_METADATA)
    old_id = read_partition_metadata(cluster.data_dir(3) / "again-0" / PARTITION_METADATA)
    assert new_id and old_id and new_id != old_id

    cluster.replace_coordinator_journal()
    cluster.start_broker(3)
    coordinator = ("127.0.0.1", cluster.coordinator_port)   # brokers list the brokers they knew meanwhile
    cluster.wait_for(lambda: not coordinator_problems(coordinator, {1, 2, 3}), 30, "every broker registered afresh")
    # the restore, as the supervisor makes it (within the brokers' 10 s grace before they put back
    # what their disks hold themselves)
    with KafkaClient(cluster.bootstrap, timeout=10.0) as client:
        client.create_topic("again", 1, 3, {"min.insync.replicas": "1", RESTORE_TOPIC_ID: str(new_id),
                                            RESTORE_LEADER_EPOCH: "5"}, assignments=[[1, 2, 3]])
    cluster.wait_in_sync("again", 1)
    cluster.wait_for(lambda: cluster.partition("again", 0)[0] == 1, 20, "broker 1 leading")
    time.sleep(1.5)   # the last fetches
    cluster.stop()
    leader = cluster.replica_batches(1, "again", 0, 3)
    assert b"new0" in leader
    assert all(cluster.replica_batches(n, "again", 0, 3) == leader for n in (2, 3))
    assert b"old" not in cluster.replica_batches(3, "again", 0, 1 << 30)
    assert "another topic of that name than its leader" in cluster.log_text("broker-3")
    assert read_partition_metadata(cluster.data_dir(3) / "again-0" / PARTITION_METADATA) == new_id
    # set aside, not deleted (Kafka's -stray name): the old topic's records can still be read
    [aside] = cluster.data_dir(3).glob("again-0.*-stray")
    assert read_partition_metadata(aside / PARTITION_METADATA) == old_id
    assert b"old9" in b"".join(f.read_bytes() for f in aside.glob("*.log"))
