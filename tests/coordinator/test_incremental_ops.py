"""IncrementalAlterConfigs operations (shared by the broker's and the coordinator's handler)."""

import pytest

from sandbox.coordinator.model import CoordinatorError
from sandbox.coordinator.topic_configs import RESOURCE_GROUP, incremental_ops
from sandbox.protocol.errors import INVALID_CONFIG, INVALID_REQUEST


def test_set_delete_append_subtract():
    current = {"cleanup.policy": "delete", "retention.ms": "1000"}
    set_, delete = incremental_ops(current, [
        ("retention.ms", 0, "2000"),
        ("segment.ms", 1, None),
        ("cleanup.policy", 2, "compact,delete"),
    ])
    assert set_ == {"retention.ms": "2000", "cleanup.policy": "delete,compact"}
    assert delete == ["segment.ms"]
    set_, _ = incremental_ops({"cleanup.policy": "delete,compact"}, [("cleanup.policy", 3, "delete")])
    assert set_ == {"cleanup.policy": "compact"}
    set_, _ = incremental_ops({}, [("cleanup.policy", 2, "compact")])
    assert set_ == {"cleanup.policy": "compact"}


def test_list_operations_on_a_key_that_is_not_a_list_are_refused_as_kafka_refuses_them():
    with pytest.raises(CoordinatorError) as e:
        incremental_ops({"retention.ms": "1000"}, [("retention.ms", 2, "5")])
    assert e.value.error_code == INVALID_CONFIG
    assert e.value.message == "Config value append is not allowed for config key: retention.ms"
    with pytest.raises(CoordinatorError) as e:
        incremental_ops({}, [("consumer.session.timeout.ms", 3, "1")], RESOURCE_GROUP)
    assert e.value.error_code == INVALID_CONFIG and "subtract" in e.value.message


def test_a_key_named_twice_or_an_unknown_operation_is_an_invalid_request():
    with pytest.raises(CoordinatorError) as e:
        incremental_ops({}, [("retention.ms", 0, "1"), ("retention.ms", 1, None)])
    assert e.value.error_code == INVALID_REQUEST
    with pytest.raises(CoordinatorError) as e:
        incremental_ops({}, [("retention.ms", 7, "1")])
    assert e.value.error_code == INVALID_REQUEST


def test_a_null_value_to_set_or_append_is_an_invalid_request():
    with pytest.raises(CoordinatorError) as e:
        incremental_ops({}, [("retention.ms", 0, None)])
    assert e.value.error_code == INVALID_REQUEST and "Null value" in e.value.message
    assert incremental_ops({"retention.ms": "1"}, [("retention.ms", 1, None)]) == ({}, ["retention.ms"])
