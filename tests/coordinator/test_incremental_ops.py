"""IncrementalAlterConfigs operations (shared by the broker's and the coordinator's handler)."""

from sandbox.coordinator.topic_configs import incremental_ops


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
