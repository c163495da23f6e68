"""Topic config names, defaults and value checks as Kafka 4's LogConfig has them: the configs
Kafka 4 added, the two it removed, INT bounds, the compaction-lag combination, retention.bytes
without a bound, and the one deliberate difference (segment.bytes' minimum)."""
from __future__ import annotations

import uuid

import pytest

from sandbox.coordinator import CoordinatorError
from sandbox.coordinator import topic_configs as tc
from sandbox.protocol import errors as E
from coordinator.coordinator_helpers import machine_with_brokers, run


def refused(configs: dict) -> CoordinatorError:
    with pytest.raises(CoordinatorError) as info:
        tc.validate(configs)
    assert info.value.error_code == E.INVALID_CONFIG, info.value
    return info.value


@pytest.mark.parametrize("key, value, default", [
    ("compression.gzip.level", "9", "-1"), ("compression.gzip.level", "-1", "-1"),
    ("compression.lz4.level", "17", "9"), ("compression.zstd.level", "-5", "3"),
    ("leader.replication.throttled.replicas", "0:1,1:2", ""),
    ("follower.replication.throttled.replicas", "*", ""),
    ("remote.log.copy.disable", "true", "false"), ("remote.log.delete.on.disable", "TRUE", "false"),
])
def test_kafka4_topic_configs_are_taken_with_kafka_defaults(key, value, default):
    assert tc.validate({key: value})[key] == value.lower()
    assert tc.DEFAULTS[key] == default


@pytest.mark.parametrize("key, value", [
    ("compression.gzip.level", "0"), ("compression.gzip.level", "10"), ("compression.lz4.level", "18"),
    ("compression.zstd.level", "23"), ("leader.replication.throttled.replicas", "0-1"),
])
def test_kafka4_topic_config_values_out_of_range_are_refused(key, value):
    assert key in refused({key: value}).message


@pytest.mark.parametrize("key", ["message.downconversion.enable", "message.timestamp.difference.max.ms"])
def test_configs_kafka_4_removed_are_unknown_names(key):
    assert refused({key: "1"}).message == f"Unknown topic config name: {key}"


@pytest.mark.parametrize("key", ["segment.bytes", "segment.index.bytes", "index.interval.bytes",
                                 "max.message.bytes", "min.insync.replicas"])
def test_int_configs_refuse_values_beyond_a_java_int(key):
    assert tc.validate({key: str(2**31 - 1)})[key] == str(2**31 - 1)
    assert "Not a number of type INT" in refused({key: str(2**31)}).message


def test_long_configs_refuse_values_beyond_a_java_long():
    assert "Not a number of type LONG" in refused({"retention.ms": str(2**63)}).message


def test_retention_bytes_takes_any_negative_as_unlimited():
    assert tc.validate({"retention.bytes": "-5"}) == {"retention.bytes": "-5"}


def test_segment_bytes_keeps_small_segments_allowed_on_purpose():
    assert tc.validate({"segment.bytes": "16384"}) == {"segment.bytes": "16384"}


def test_timestamp_after_max_defaults_to_one_hour():
    assert tc.DEFAULTS["message.timestamp.after.max.ms"] == "3600000"


def test_min_compaction_lag_above_max_is_refused_at_create_and_alter():
    m = machine_with_brokers(1)
    with pytest.raises(CoordinatorError) as info:
        m.create_topic("t", 1, 1, {"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"}, uuid.uuid4())
    assert info.value.error_code == E.INVALID_CONFIG
    assert info.value.message == ("conflict topic config setting min.compaction.lag.ms (10) > "
                                  "max.compaction.lag.ms (5)")
    run(m, m.create_topic("t", 1, 1, {"max.compaction.lag.ms": "5"}, uuid.uuid4()))
    with pytest.raises(CoordinatorError) as info:
        m.alter_configs("t", {"min.compaction.lag.ms": "6"})
    assert info.value.error_code == E.INVALID_CONFIG
    run(m, m.alter_configs("t", {"min.compaction.lag.ms": "5"}))
