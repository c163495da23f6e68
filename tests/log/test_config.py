"""LogConfig defaults and Kafka topic-config parsing."""
import pytest

from sandbox.log import LogConfig


def test_defaults_are_kafkas():
    c = LogConfig()
    assert (c.segment_bytes, c.segment_ms, c.retention_ms, c.retention_bytes) == (1073741824, 604800000, 604800000, -1)
    assert (c.index_interval_bytes, c.max_message_bytes) == (4096, 1048588)
    assert c.flush_messages is None and c.flush_ms is None
    assert c.message_timestamp_type == "CreateTime" and c.cleanup_policy == "delete"


def test_from_topic_config_reads_kafka_names():
    base = LogConfig(segment_bytes=1000)
    c = LogConfig.from_topic_config({"retention.ms": "-1", "retention.bytes": "500", "message.timestamp.type": "LogAppendTime",
                                     "flush.messages": "1", "cleanup.policy": "compact,delete", "other.key": "x"}, base)
    assert c.segment_bytes == 1000 and c.retention_ms == -1 and c.retention_bytes == 500
    assert c.log_append_time and c.flush_messages == 1 and c.deletes
    assert LogConfig.from_topic_config({"flush.messages": str(2**63 - 1)}).flush_messages is None
    assert not LogConfig.from_topic_config({"cleanup.policy": "compact"}).deletes


@pytest.mark.parametrize("key,value", [("segment.bytes", "abc"), ("segment.bytes", "1"), ("retention.ms", "-5"),
                                       ("message.timestamp.type", "Whenever"), ("cleanup.policy", "shred"),
                                       ("max.message.bytes", "1.5")])
def test_bad_values_name_the_key(key, value):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        LogConfig.from_topic_config({key: value})
