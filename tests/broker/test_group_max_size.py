"""group.max.size and group.consumer.max.size with real librdkafka consumers against a real broker
process: a third consumer of a group limited to two is refused GROUP_MAX_SIZE_REACHED, as Kafka
refuses it (a classic consumer sees the JoinGroup error and keeps trying; librdkafka makes it fatal
for a KIP-848 consumer, as against Kafka). 127.0.0.1 only; the broker is stopped."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError

from helpers import BrokerProcess
from sandbox.client import KafkaClient


@pytest.fixture
def limited_broker(tmp_path):
    b = BrokerProcess(tmp_path / "data", options=["group.max.size=2", "group.consumer.max.size=2"]).start()
    try:
        with KafkaClient(b.bootstrap) as c:
            c.create_topic("t", 4)
        yield b
    finally:
        b.stop()


@pytest.mark.parametrize("protocol, code", [("classic", KafkaError.GROUP_MAX_SIZE_REACHED),
                                            ("consumer", KafkaError._FATAL)])
def test_a_third_consumer_of_a_group_limited_to_two_is_refused(limited_broker, protocol, code):
    conf = {"bootstrap.servers": limited_broker.bootstrap, "group.id": f"g-{protocol}", "group.protocol": protocol,
            "log_level": 0}
    members = [Consumer(dict(conf)) for _ in range(3)]
    try:
        for c in members[:2]:
            c.subscribe(["t"])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all(c.assignment() for c in members[:2]):
            for c in members[:2]:
                c.poll(0.1)
        assert sorted(len(c.assignment()) for c in members[:2]) == [2, 2]
        members[2].subscribe(["t"])
        errors: list = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not errors:
            for c in members[:2]:
                c.poll(0.05)
            m = members[2].poll(0.2)
            if m is not None and m.error() is not None:
                errors.append(m.error())
        assert errors and errors[0].code() == code, errors
        assert "Consumer group has reached maximum size" in errors[0].str()
        assert members[2].assignment() == [] and sorted(len(c.assignment()) for c in members[:2]) == [2, 2]
    finally:
        for c in members:
            c.close()
