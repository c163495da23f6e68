"""Online migration of a running group between the classic protocol and KIP-848's, with real
librdkafka consumers on a real broker, as confluent-kafka's own suite rehearses it
(test_consumer_upgrade_downgrade) and as a team rolls its consumers over one at a time:

a classic consumer owns every partition; a `group.protocol=consumer` consumer joins the same
group: the group becomes a consumer group and the two split the partitions; the new one leaves:
the group is classic again and the classic consumer owns everything again. Every record produced
meanwhile is read, for each of librdkafka's classic assignors (eager and cooperative)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError

from helpers import wait_for
from sandbox.client import KafkaClient

from .kit import consumer, create_topic, produce_all, producer, unique
from .test_consumer_groups import new_consumer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

PARTS = 10


def group_type(bootstrap: str, group: str) -> str:
    with KafkaClient(bootstrap) as kc:
        return kc.describe_group(group).group_type


def admin_type(bootstrap: str, group: str) -> str:
    """What confluent-kafka's describe_consumer_groups says (ConsumerGroupType)."""
    from confluent_kafka.admin import AdminClient

    adm = AdminClient({"bootstrap.servers": bootstrap})
    return str(adm.describe_consumer_groups([group])[group].result(timeout=15).type).rsplit(".", 1)[-1]


def poll_all(consumers, got: list) -> None:
    for c in consumers:
        m = c.poll(0.05)
        if m is None:
            continue
        if m.error():
            assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
            continue
        got.append(m.value())


def owned(c) -> set[int]:
    return {tp.partition for tp in c.assignment()}


def split_evenly(consumers, got: list, what: str) -> None:
    share = PARTS // len(consumers)

    def even() -> bool:
        poll_all(consumers, got)
        sets = [owned(c) for c in consumers]
        for i in range(len(sets)):
            for j in range(i + 1, len(sets)):
                assert not sets[i] & sets[j], f"partitions {sets[i] & sets[j]} owned twice"
        return all(len(s) == share for s in sets) and set().union(*sets) == set(range(PARTS))

    wait_for(even, 60, interval=0, what=what, detail=lambda: str([sorted(owned(c)) for c in consumers]))


def read_batch(bootstrap: str, topic: str, consumers, got: list, start: int) -> None:
    """100 records more, every one of them read by one of `consumers`."""
    values = [f"r{i}".encode() for i in range(start, start + 100)]
    produce_all(producer(bootstrap), topic, [(None, v, {"partition": i % PARTS}) for i, v in enumerate(values)])
    wait_for(lambda: poll_all(consumers, got) or set(values) <= set(got), 60, interval=0,
             what=f"records {start}..{start + 99} read", detail=lambda: f"{len(set(values) & set(got))} of 100")


@pytest.mark.parametrize("strategy", ["roundrobin", "range", "cooperative-sticky"])
def test_a_classic_group_is_upgraded_and_downgraded_online(broker, strategy):
    topic = unique(f"migrate-{strategy}")
    create_topic(broker.bootstrap, topic, PARTS)
    got: list = []
    old = consumer(broker.bootstrap, topic, **{"partition.assignment.strategy": strategy,
                                               "auto.offset.reset": "earliest", "client.id": "old"})
    old.subscribe([topic])
    new = None
    try:
        split_evenly([old], got, "the classic consumer owning every partition")
        assert group_type(broker.bootstrap, topic) == "classic" and admin_type(broker.bootstrap, topic) == "CLASSIC"
        read_batch(broker.bootstrap, topic, [old], got, 0)

        new = new_consumer(broker.bootstrap, topic, "new")
        new.subscribe([topic])
        split_evenly([old, new], got, "the two splitting the partitions after the upgrade")
        assert group_type(broker.bootstrap, topic) == "consumer" and admin_type(broker.bootstrap, topic) == "CONSUMER"
        read_batch(broker.bootstrap, topic, [old, new], got, 100)

        new.close()
        new = None
        split_evenly([old], got, "the classic consumer owning every partition again after the downgrade")
        wait_for(lambda: group_type(broker.bootstrap, topic) == "classic", 10, what="the group classic again")
        assert admin_type(broker.bootstrap, topic) == "CLASSIC"
        read_batch(broker.bootstrap, topic, [old], got, 200)
    finally:
        if new is not None:
            new.close()
        old.close()
    assert len(got) >= 300


def test_the_upgrade_is_refused_when_the_policy_is_disabled(broker_factory):
    """group.consumer.migration.policy=disabled: the new consumer is refused (GROUP_ID_NOT_FOUND,
    fatal in librdkafka) and the classic one keeps every partition."""
    b = broker_factory(options=["group.consumer.migration.policy=disabled"])
    topic = unique("migrate-off")
    create_topic(b.bootstrap, topic, PARTS)
    old = consumer(b.bootstrap, topic, **{"auto.offset.reset": "earliest"})
    old.subscribe([topic])
    new = None
    try:
        split_evenly([old], [], "the classic consumer owning every partition")
        new = new_consumer(b.bootstrap, topic, "new")
        new.subscribe([topic])
        errors: list = []
        deadline = time.monotonic() + 20
        while not errors and time.monotonic() < deadline:
            m = new.poll(0.1)
            old.poll(0.05)
            if m is not None and m.error() and m.error().code() != KafkaError._PARTITION_EOF:
                errors.append(m.error())
        assert errors and errors[0].code() == KafkaError._FATAL and "group id does not exist" in errors[0].str(), errors
        assert owned(old) == set(range(PARTS)) and group_type(b.bootstrap, topic) == "classic"
    finally:
        if new is not None:
            new.close()
        old.close()
