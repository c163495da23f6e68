"""[sandbox] partitions is Kafka's num.partitions: the coordinator started with it
(`--default-partitions`, which `sandbox up` passes) gives an auto-created topic, and one created
with num_partitions = -1, that many partitions; DescribeConfigs of a broker shows it."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import ConfigResource, NewTopic

from .kit import unique
from .replication_kit import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_topics_created_without_a_count_get_the_stack_default(tmp_path):
    # what `sandbox up` passes with [sandbox] partitions = 4 (tests/test_config_replication.py)
    c = Cluster(tmp_path / "cluster", brokers=1, coordinator_options=["--default-partitions", "4"],
                broker_options=["num.partitions=4"])
    try:
        c.start()
        auto = unique("auto")
        p = Producer({"bootstrap.servers": c.bootstrap})
        p.produce(auto, b"x")
        assert p.flush(20) == 0
        asked = unique("asked")
        admin = c.admin()
        admin.create_topics([NewTopic(asked)], request_timeout=15)[asked].result(timeout=20)
        md = admin.list_topics(timeout=5).topics
        assert len(md[auto].partitions) == 4 and len(md[asked].partitions) == 4
        res = ConfigResource(ConfigResource.Type.BROKER, "1")
        configs = admin.describe_configs([res])[res].result(timeout=20)
        assert configs["num.partitions"].value == "4"
    finally:
        c.stop()
