"""The supervisor's topic/offset catalog against a real broker: what a wipe puts back."""

from __future__ import annotations

import json

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from sandbox.client import KafkaClient
from sandbox.config import parse_config
from sandbox.runner.catalog import desired_topics, load_catalog, restore_group_offsets, save_catalog

pytestmark = pytest.mark.integration


def test_catalog_keeps_runtime_topics_and_offsets_and_restores_what_data_allows(broker, tmp_path):
    cfg = parse_config(f'[sandbox]\ndata_dir = "{tmp_path / "data"}"\n[topics.declared]\npartitions = 2\n',
                       cwd=tmp_path)
    cfg.data_dir.mkdir(parents=True)
    with KafkaClient(broker.bootstrap) as c:
        c.create_topic("runtime", 3, 1, {"retention.ms": "3600000"})
        p = Producer({"bootstrap.servers": broker.bootstrap})
        for i in range(30):
            p.produce("runtime", value=b"x", partition=i % 3)
        assert p.flush(15) == 0
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "billing",
                             "enable.auto.commit": False})
        consumer.commit(offsets=[TopicPartition("runtime", 0, 7), TopicPartition("runtime", 1, 10)],
                        asynchronous=False)
        consumer.close()
        save_catalog(cfg, c)
        cat = load_catalog(cfg)
        assert cat["runtime"].partitions == 3 and cat["runtime"].config == {"retention.ms": "3600000"}
        assert set(desired_topics(cfg)) == {"runtime", "declared"}
        raw = json.loads((cfg.data_dir / "topics.json").read_text())
        assert raw["groups"]["billing"] == {"runtime:0": 7, "runtime:1": 10}
        # the group's offsets are lost (as when the broker holding them is wiped) ...
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.delete_consumer_groups(["billing"])["billing"].result(timeout=10)
        assert c.committed_offsets("billing") == {}
        # ... and one saved offset points past the data that is left: it cannot come back
        raw["groups"]["billing"]["runtime:2"] = 999
        (cfg.data_dir / "topics.json").write_text(json.dumps(raw))
        assert restore_group_offsets(cfg, c) == ["billing (2 partitions)"]
        assert c.committed_offsets("billing") == {("runtime", 0): 7, ("runtime", 1): 10}
